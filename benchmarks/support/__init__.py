"""Shared by the benchmarks; not a benchmark itself (`make bench` runs benchmarks/*.py)."""
