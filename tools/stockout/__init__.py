"""Stockout model tooling: store simulator, baselines, training, evaluation (`storegw[train]`)."""
