"""Base algorithms: one update phase each, any strategy on top.

``PPO`` (first-order clipped surrogates, Adam) and ``NaturalGradient`` (TRPO-style steps, the
paper's base) share :class:`gradmanip.rl.trainer.Trainer`.
"""

from gradmanip.algos.natural_gradient import NaturalGradient
from gradmanip.algos.ppo import PPO

__all__ = ["PPO", "NaturalGradient"]
