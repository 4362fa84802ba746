"""Supervised classifiers (CNN, CNN + self-attention) on the same canvases as the environments.

``baselines.pretrained(ENV_ID, model="cnn" | "self_attention")`` is the baseline of that
environment's leaderboard row, from the weights that ship in the repository
(:mod:`baselines.shipped`).
"""

from baselines.shipped import PretrainedBaseline, pretrained

__all__ = ["PretrainedBaseline", "pretrained"]
