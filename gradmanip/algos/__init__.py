"""Base algorithms: one update phase each, any strategy on top.

``PPO`` (first-order clipped surrogates, Adam) and ``NaturalGradient`` (TRPO-style steps, the
paper's base) share :class:`gradmanip.rl.trainer.Trainer`; ``SAC`` (off-policy, replay buffer)
runs in :class:`gradmanip.rl.off_policy_trainer.OffPolicyTrainer`.
"""

from gradmanip.algos.natural_gradient import NaturalGradient
from gradmanip.algos.ppo import PPO
from gradmanip.algos.sac import SAC

__all__ = ["PPO", "SAC", "NaturalGradient"]
