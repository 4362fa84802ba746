"""Agents that learn through the glimpse environments' API (the Recurrent Attention Model).

``agents.pretrained(ENV_ID)`` is the RAM of that environment's leaderboard row, from the
weights that ship in the repository (:mod:`agents.shipped`).
"""

from agents.shipped import PretrainedRAM, pretrained

__all__ = ["PretrainedRAM", "pretrained"]
