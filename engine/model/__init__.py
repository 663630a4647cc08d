"""Model resolution, the embedded default model, loading and fine-tuning methods."""
