"""The reinforcement-learning parts around a base algorithm: networks, Gaussian maths,
collectors, episode statistics, advantages and the training loop; for the off-policy base the
SAC networks, the replay buffer, the episode window and the off-policy loop."""

from gradmanip.rl.advantages import SafeAdvantages
from gradmanip.rl.collect import GaussianPolicy, make_collector
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.models import ActorCritic, make_actor_critic
from gradmanip.rl.off_policy_trainer import OffPolicyTrainer
from gradmanip.rl.replay import make_replay_buffer
from gradmanip.rl.sac_models import SACNetworks, make_sac_networks
from gradmanip.rl.trainer import Trainer

__all__ = [
    "ActorCritic",
    "EpisodeTracker",
    "GaussianPolicy",
    "OffPolicyTrainer",
    "SACNetworks",
    "SafeAdvantages",
    "Trainer",
    "make_actor_critic",
    "make_collector",
    "make_replay_buffer",
    "make_sac_networks",
]
