"""Diagonal Gaussian policy math on plain tensors (no distribution objects in hot loops).

Both collectors (:class:`gradmanip.rl.collect.GaussianSampler`,
:class:`gradmanip.fast.lean_collector.LeanCollector`) and the updates compute log-densities
with the same :func:`standardized_log_prob`, so the first PPO ratio of a batch is exactly 1.
"""

from __future__ import annotations

import math

from torch import Tensor
from torchrl.envs.utils import ExplorationType

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

# exploration types under which a Gaussian policy acts with its mean (evaluation)
MEAN_ACTION_EXPLORATION = (
    ExplorationType.DETERMINISTIC,
    ExplorationType.MODE,
    ExplorationType.MEAN,
)


def standardized_log_prob(z: Tensor, scale: Tensor) -> Tensor:
    """Log-density of ``action = loc + scale * z`` under ``N(loc, scale)``, summed over the last
    dimension; collectors call it with the noise ``z`` they drew."""
    return (-0.5 * z.square() - scale.log()).sum(-1) - HALF_LOG_2PI * z.shape[-1]


def gaussian_log_prob(action: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """Log-density of a diagonal Gaussian, summed over the last (action) dimension."""
    return standardized_log_prob((action - loc) / scale, scale)


def gaussian_kl(loc_p: Tensor, scale_p: Tensor, loc_q: Tensor, scale_q: Tensor) -> Tensor:
    """``KL(N(loc_p, scale_p) || N(loc_q, scale_q))`` of diagonal Gaussians, summed over the
    last dimension: ``sum log(s_q/s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2``."""
    var_ratio = (scale_p / scale_q).square()
    mean_term = ((loc_p - loc_q) / scale_q).square()
    return 0.5 * (var_ratio + mean_term - 1.0 - var_ratio.log()).sum(-1)
