"""Simulated constrained nodes, a fleet runner and lossy links, for tests and benchmarks."""
