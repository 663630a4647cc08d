"""Benchmarks: each module is runnable (`python -m ftlab.engine.bench.NAME`) and records how its figures were made."""
