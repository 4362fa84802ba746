"""Agents that learn through the glimpse environments' API (the Recurrent Attention Model)."""
