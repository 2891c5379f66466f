"""Decoding: sampling settings and early-exit generation."""
