"""Benchmarks: each module has run() -> dict; `python -m bench` prints them as JSON."""
