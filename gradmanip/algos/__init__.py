"""Base algorithms: one update phase each, any strategy on top.

``PPO`` (first-order clipped surrogates, Adam) and ``NaturalGradient`` (TRPO-style steps, the
paper's base) share :class:`gradmanip.trainer.Trainer`.
"""

from gradmanip.algos.ppo import PPO
from gradmanip.algos.trpo import NaturalGradient

__all__ = ["PPO", "NaturalGradient"]
