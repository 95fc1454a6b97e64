"""Benchmarks of gunyah-sim: every figure is a ratio against a baseline measured in
the same run, because the machines these run on are shared and noisy."""
