"""Analyses of captured passes: per-head lens, PCA trajectories, patching sweeps."""
