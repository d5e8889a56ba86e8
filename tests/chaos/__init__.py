"""Chaos: the kernel under load while its workers are killed at random."""
