"""Benchmarks, run on demand (`make bench` or `python -m bench.<name>`); results go to docs/."""
