"""Supervised classifiers (CNN, CNN + self-attention) on the same canvases as the environments."""
