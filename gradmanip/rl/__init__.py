"""The reinforcement-learning parts around a base algorithm: networks, Gaussian maths,
collectors, episode statistics, advantages and the training loop."""

from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.models import ActorCritic, make_actor_critic
from gradmanip.rl.trainer import Trainer

__all__ = [
    "ActorCritic",
    "EpisodeTracker",
    "GaussianPolicy",
    "SafeAdvantages",
    "Trainer",
    "make_actor_critic",
    "make_collector",
]
