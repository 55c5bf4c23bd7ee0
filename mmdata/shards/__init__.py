"""Sharded storage: write (sources, writer, columns), index + card, read, inspect, verify."""
