"""Datasets: the clip store, the synthetic generators and the real MUG / Penn Action adapters."""
