"""Benchmarks of kdeps, each printed as a ratio against a baseline measured side by side in the same
run (medians over repeated trials). Run `python -m bench all` or `python -m bench p1 p3`; see
bench/README.md."""
