"""Benchmarks: ``python -m bench.<name>``; each module also exposes functions a harness can call."""
