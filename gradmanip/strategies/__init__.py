"""Gradient-manipulation strategies as composable TensorDict modules.

Depends on torch and tensordict only. See ``docs/strategies.md`` for conventions and formulas.
"""

from gradmanip.strategies.base import (
    MODE_BOTH,
    MODE_COST_ONLY,
    MODE_REWARD_ONLY,
    Strategy,
)
from gradmanip.strategies.combiners import (
    Combiner,
    PCGradCombiner,
    ProjectionCombiner,
    WeightedSumCombiner,
)
from gradmanip.strategies.cpo import CPO
from gradmanip.strategies.delayed import DelayedSafety
from gradmanip.strategies.hard_switch import HardSwitch
from gradmanip.strategies.lagrangian import Lagrangian
from gradmanip.strategies.mgda import MGDA, MGDACombiner
from gradmanip.strategies.pcgrad import PCGrad
from gradmanip.strategies.pcpo import PCPO
from gradmanip.strategies.pid_lagrangian import PIDLagrangian
from gradmanip.strategies.registry import (
    available_strategies,
    make_strategy,
    register_strategy,
    strategy_class,
)
from gradmanip.strategies.soft_switch import SoftSwitch
from gradmanip.strategies.torchjd import CAGrad, TorchJDCombiner, UPGrad
from gradmanip.strategies.trust_region import (
    TrustRegionGeometry,
    TrustRegionStep,
    TrustRegionStrategy,
)
from gradmanip.strategies.weighted_sum import RewardOnly, WeightedSum

for _cls in (
    SoftSwitch,
    HardSwitch,
    PCGrad,
    Lagrangian,
    PIDLagrangian,
    WeightedSum,
    RewardOnly,
    MGDA,
    CPO,
    PCPO,
    UPGrad,
    CAGrad,
):
    register_strategy(_cls)

__all__ = [
    "MODE_BOTH",
    "MODE_COST_ONLY",
    "MODE_REWARD_ONLY",
    "CAGrad",
    "CPO",
    "Combiner",
    "DelayedSafety",
    "HardSwitch",
    "Lagrangian",
    "MGDA",
    "MGDACombiner",
    "PCGrad",
    "PCPO",
    "PIDLagrangian",
    "PCGradCombiner",
    "ProjectionCombiner",
    "RewardOnly",
    "SoftSwitch",
    "Strategy",
    "TorchJDCombiner",
    "TrustRegionGeometry",
    "TrustRegionStep",
    "TrustRegionStrategy",
    "UPGrad",
    "WeightedSum",
    "WeightedSumCombiner",
    "available_strategies",
    "make_strategy",
    "register_strategy",
    "strategy_class",
]
