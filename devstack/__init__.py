"""Brings up real local services (PostgreSQL, Slurm, the API, ...) for tests and the demo.

Not part of the installed distribution: it drives Debian's packages on a development or CI machine.
"""
