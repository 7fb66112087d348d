"""Benchmarks: synthetic fleets and the harness behind `make bench`."""
