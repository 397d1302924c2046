"""Benchmarks: `python -m bench` runs them; results go to bench/RESULTS.md by hand."""
