"""Shared package of Atari Pixels: environments, agents, data formats, models and checkpoints."""
