"""Shared kernel: ids, clock, errors, tokens and other rules with no I/O."""
