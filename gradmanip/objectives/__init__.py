"""Per-objective losses as TorchRL loss modules, for a gradient driver to combine.

- :class:`SafePPOLoss`: PPO's clipped surrogates of the reward and of every cost (and the
  critics' loss) from one actor forward;
- :class:`PerObjectiveLoss`: the same per-objective entries from any stock TorchRL actor loss
  (``ClipPPOLoss``, ``KLPENPPOLoss``, ``A2CLoss``, ...), one instance per objective;
- :class:`SafeSACLoss`: TorchRL's ``SACLoss`` (twin reward critics, temperature) with cost
  critics and one actor loss per objective.
"""

from gradmanip.objectives.per_objective import PerObjectiveLoss, negated_cost_key
from gradmanip.objectives.safe_ppo_loss import SafePPOLoss, clipped_surrogates
from gradmanip.objectives.safe_sac_loss import SafeSACLoss

__all__ = [
    "PerObjectiveLoss",
    "SafePPOLoss",
    "SafeSACLoss",
    "clipped_surrogates",
    "negated_cost_key",
]
