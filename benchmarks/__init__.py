"""Benchmarks for Khalex Pay: `make bench` (`uv run python -m benchmarks [--quick]`).

Each module measures one thing and returns `report.Figure`s; `__main__` runs them in order
and prints one table, every figure next to the ceiling in shared/PERF-CEILINGS.md it should
be judged against. The HTTP, worker and memory figures start the real `khalex-pay`
processes against a throwaway PostgreSQL database and Redis database, and stop them all
before the run ends.
"""
