"""End-to-end tests: selfheal under the real Nagios Core 4, NRPE and Icinga 2.

A package (unlike ``tests/``) so that its ``conftest`` does not shadow the
``conftest`` module the other tests import their helpers from.
"""
