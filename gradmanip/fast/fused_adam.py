"""Adam steps through torch's functional fused Adam, for hot loops with many small steps.

``torch.optim.Adam(fused=True).step()`` spends most of a small network's step in per-parameter
Python bookkeeping; :class:`FusedAdamSteps` calls the functional form of the same fused kernel,
``torch.optim.adam.adam(..., fused=True)``, once for several optimizers with equal settings,
while the moments and step counts stay in the optimizers' own ``state``, so their
``state_dict`` remains the checkpoint and the result is the one ``step()`` gives.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim.adam import adam


class FusedAdamSteps:
    """Adam steps of ``torch.optim.Adam(fused=True)`` optimizers by direct fused-kernel calls.

    The moments and step counters stay in the optimizers' ``state`` (so their ``state_dict`` is
    the checkpoint), and the settings are read from their single parameter group by
    :meth:`refresh`, which must run after any change of either (``load_state_dict``, a new
    learning rate). Optimizers with equal settings are stepped by one kernel call.
    """

    def __init__(self, optimizers: list[torch.optim.Adam]) -> None:
        for optimizer in optimizers:
            group = optimizer.param_groups
            if len(group) != 1 or not group[0]["fused"]:
                raise ValueError("FusedAdamSteps needs fused Adam optimizers with one group each")
        self.optimizers = optimizers
        self._lists: list[tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]] = []
        self._settings: list[dict] = []
        self.refresh()

    def __repr__(self) -> str:
        return f"FusedAdamSteps(optimizers={len(self.optimizers)})"

    def refresh(self) -> None:
        """Re-read settings and state tensors (creating missing state as Adam does)."""
        self._lists, self._settings = [], []
        for optimizer in self.optimizers:
            group = optimizer.param_groups[0]
            if group["amsgrad"] or group["maximize"] or group["differentiable"]:
                raise ValueError("FusedAdamSteps supports plain Adam (no amsgrad/maximize)")
            lists: tuple[list[Tensor], ...] = ([], [], [], [])
            for param in group["params"]:
                state = optimizer.state[param]
                if len(state) == 0:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format
                    )
                for target, value in zip(
                    lists,
                    (param, state["exp_avg"], state["exp_avg_sq"], state["step"]),
                    strict=True,
                ):
                    target.append(value)
            self._lists.append(lists)
            lr = group["lr"]
            self._settings.append(
                {
                    "lr": float(lr) if not isinstance(lr, Tensor) else lr,
                    "beta1": float(group["betas"][0]),
                    "beta2": float(group["betas"][1]),
                    "weight_decay": float(group["weight_decay"]),
                    "eps": float(group["eps"]),
                    "decoupled": bool(group.get("decoupled_weight_decay", False)),
                }
            )

    @torch.no_grad()
    def step(self, grads: list[list[Tensor] | None]) -> None:
        """One Adam step of every optimizer whose entry of ``grads`` (gradients in its
        parameter order) is not None."""
        calls: list[tuple[dict, list[list[Tensor]]]] = []
        for settings, lists, grad in zip(self._settings, self._lists, grads, strict=True):
            if grad is None:
                continue
            params, exp_avgs, exp_avg_sqs, steps = lists
            if calls and calls[-1][0] == settings:
                merged = calls[-1][1]
                for target, values in zip(
                    merged, (params, grad, exp_avgs, exp_avg_sqs, steps), strict=True
                ):
                    target.extend(values)
            else:
                calls.append(
                    (
                        settings,
                        [list(params), list(grad), list(exp_avgs), list(exp_avg_sqs), list(steps)],
                    )
                )
        for settings, (params, grad, exp_avgs, exp_avg_sqs, steps) in calls:
            adam(
                params,
                grad,
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                foreach=False,
                capturable=False,
                differentiable=False,
                fused=True,
                grad_scale=None,
                found_inf=None,
                has_complex=False,
                decoupled_weight_decay=settings["decoupled"],
                amsgrad=False,
                beta1=settings["beta1"],
                beta2=settings["beta2"],
                lr=settings["lr"],
                weight_decay=settings["weight_decay"],
                eps=settings["eps"],
                maximize=False,
            )
