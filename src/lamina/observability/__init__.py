"""Metrics and structured engine logs: a leaf package that imports nothing of Lamina."""
