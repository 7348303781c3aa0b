"""A new strategy: hard switching on a smoothed cost estimate, checked by the property suite."""

import torch
from tensordict import TensorDict

from gradmanip.strategies import (
    MODE_COST_ONLY,
    MODE_REWARD_ONLY,
    Strategy,
    make_strategy,
    register_strategy,
)
from gradmanip.strategies.testing import check_strategy


@register_strategy
class SmoothedSwitch(Strategy):
    """Follow g_c while an exponential moving average of J_c_hat exceeds the limit, else g_r.

    The average moves once per epoch (``update_state``), so one noisy batch of episodes does not
    flip the mode. Before the first epoch the latest J_c_hat is used as it is.
    """

    name = "smoothed_switch"
    diagnostic_names = ("mode", "smoothed_cost")

    def __init__(self, cost_limit: float, smoothing: float = 0.8) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must lie in [0, 1), got {smoothing!r}")
        super().__init__(num_constraints=1)
        self.smoothing = float(smoothing)
        # State lives in buffers, so state_dict() checkpoints it and load_state_dict() restores it.
        self.register_buffer("cost_limit", torch.tensor([float(cost_limit)]))
        self.register_buffer("smoothed_cost", torch.full((1,), float("nan")))

    def _update_state(self, episode_cost: torch.Tensor) -> None:
        cost = episode_cost.to(self.smoothed_cost)
        if torch.isnan(self.smoothed_cost).all():
            self.smoothed_cost.copy_(cost)
        else:
            self.smoothed_cost.mul_(self.smoothing).add_((1.0 - self.smoothing) * cost)

    def reset(self) -> None:
        self.smoothed_cost.fill_(float("nan"))

    def _aggregate(self, g_r, g_c, episode_cost):
        first_epoch = torch.isnan(self.smoothed_cost).all()
        estimate = episode_cost if first_epoch else self.smoothed_cost.to(episode_cost)
        if bool((estimate > self.cost_limit).any()):
            update, mode = g_c[0].clone(), MODE_COST_ONLY
        else:
            update, mode = g_r.clone(), MODE_REWARD_ONLY
        return update, {"mode": torch.tensor(mode), "smoothed_cost": estimate.clone()}

    def _settings(self) -> dict[str, object]:  # shown by repr()
        return {"cost_limit": float(self.cost_limit), "smoothing": self.smoothing}


# 1. The property suite: shapes, dtypes, finiteness, forward == aggregate, homogeneity,
#    state_dict round trip, reset, renamed keys, errors on bad inputs.
strategy = make_strategy("smoothed_switch", cost_limit=10.0, smoothing=0.5)
check_strategy(strategy)
print(f"{strategy} passes check_strategy")

# 2. It behaves like any other strategy: as a TensorDict module ...
td = TensorDict(
    reward_direction=torch.tensor([1.0, 0.0]),
    cost_direction=torch.tensor([[-1.0, 1.0]]),
    episode_cost=torch.tensor([12.0]),
)
print("update at J_c = 12:", strategy(td)["update"].tolist())  # above the limit: g_c
for cost in (12.0, 4.0, 4.0):  # ... and its state advances once per epoch
    strategy.update_state(torch.tensor([cost]))
    print(f"after J_c = {cost:4.1f}: smoothed cost {float(strategy.smoothed_cost):.2f}")
print("update now:", strategy(td)["update"].tolist())  # smoothed cost 6 < 10: g_r


# 3. The suite catches the usual mistake: state kept in a plain attribute is not checkpointed.
class ForgetfulSwitch(SmoothedSwitch):
    name = "forgetful_switch"

    def __init__(self, cost_limit: float, smoothing: float = 0.8) -> None:
        super().__init__(cost_limit, smoothing)
        del self.smoothed_cost  # drop the buffer ...
        self.smoothed_cost = torch.full((1,), float("nan"))  # ... for a plain attribute


try:
    check_strategy(ForgetfulSwitch(cost_limit=10.0, smoothing=0.5))
except AssertionError as error:
    print(f"ForgetfulSwitch fails check_strategy: {error}")
else:
    raise RuntimeError("check_strategy should reject state outside the buffers")
