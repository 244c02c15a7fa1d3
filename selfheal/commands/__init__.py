"""Commands for people: status, history, report, control, validate, doctor, demo.

Nothing in the heal path imports these; ``selfheal.cli`` loads one by name
when it runs. They speak to a person at a terminal, not to Nagios.
"""
