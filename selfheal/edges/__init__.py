"""The edges: every side effect, each behind one small interface.

Safe files in the state dir, the per-check record and its lock, the
journal, and the spawner (the only code that starts or kills a process).
The engine receives them as parameters, so the decision stays pure and
tests can swap in fakes. Imports only ``selfheal.core`` and each other.
"""
