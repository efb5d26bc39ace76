"""Developer tools: model training (stockout), scaffolding."""
