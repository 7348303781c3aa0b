"""Adam steps on flat buffers through torch's functional fused Adam, for hot loops of many small
steps.

``torch.optim.Adam(fused=True).step()`` spends most of a small network's step in per-parameter
Python bookkeeping and per-tensor step counters. :class:`FusedAdamSteps` lays each optimizer's
parameters, moments and step count out as views of flat buffers (one per optimizer; the
optimizers' ``state`` holds those views, so their ``state_dict`` remains the checkpoint) and
steps each optimizer with one call of ``torch.optim.adam.adam(..., fused=True)`` on one tensor:
the same kernel, so the parameters and moments are the ones ``step()`` gives (to the last bit
of float32: the kernel's vector and tail loops may round apart).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.optim.adam import adam


def _offsets(views: Sequence[Tensor]) -> tuple[Tensor, list[int]]:
    """The 1-D buffer that ``views`` (contiguous, in any order) tile exactly, and each view's
    element offset in it."""
    first = views[0]
    size = first.element_size()
    start = min(v.data_ptr() for v in views)
    offsets = [(v.data_ptr() - start) // size for v in views]
    total = sum(v.numel() for v in views)
    spans = sorted(zip(offsets, (v.numel() for v in views), strict=True))
    tiled = all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:], strict=False))
    if (
        not tiled
        or spans[-1][0] + spans[-1][1] != total
        or not all(
            v.is_contiguous()
            and v.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
            for v in views
        )
    ):
        raise ValueError("the gradient views must tile one flat buffer")
    base = (start - first.untyped_storage().data_ptr()) // size
    return first.new_empty(0).set_(first.untyped_storage(), base, (total,)), offsets


def _lay_out(tensors: Sequence[Tensor], offsets: Sequence[int], total: int) -> Tensor:
    """A flat buffer of ``total`` entries holding each tensor at its offset, each tensor's
    ``.data`` re-pointed to its view (kept when already laid out so)."""
    first = tensors[0]
    start = first.data_ptr() - offsets[0] * first.element_size()
    if all(
        t.is_contiguous()
        and t.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
        and t.data_ptr() == start + o * t.element_size()
        for t, o in zip(tensors, offsets, strict=True)
    ):
        base = (start - first.untyped_storage().data_ptr()) // first.element_size()
        return first.new_empty(0).set_(first.untyped_storage(), base, (total,))
    flat = first.new_empty(total)
    for tensor, offset in zip(tensors, offsets, strict=True):
        view = flat[offset : offset + tensor.numel()]
        view.copy_(tensor.detach().reshape(-1))
        tensor.data = view.view_as(tensor)
    return flat


class FusedAdamSteps:
    """Steps of ``torch.optim.Adam(fused=True)`` optimizers (one parameter group each, no
    amsgrad or maximize) on flat buffers.

    ``gradients`` holds, per optimizer, the views (in its parameter order) that tile the flat
    buffer its gradients are written to; parameters and moments are laid out in the same order.
    :meth:`refresh` lays out the parameters and state (creating missing state as Adam does) and
    reads the settings; it must run after any change of either (``load_state_dict``, a new
    learning rate). Every parameter of an optimizer is stepped together (one shared step count).
    """

    def __init__(
        self,
        optimizers: list[torch.optim.Adam],
        gradients: Sequence[Sequence[Tensor]],
    ) -> None:
        if len(gradients) != len(optimizers):
            raise ValueError("give one list of gradient views per optimizer")
        for optimizer in optimizers:
            groups = optimizer.param_groups
            if len(groups) != 1 or not groups[0]["fused"]:
                raise ValueError("FusedAdamSteps needs fused Adam optimizers with one group each")
            if groups[0]["amsgrad"] or groups[0]["maximize"] or groups[0]["differentiable"]:
                raise ValueError("FusedAdamSteps supports plain Adam (no amsgrad/maximize)")
        self.optimizers = optimizers
        self.gradients = [_offsets(views) for views in gradients]
        self._flat: list[tuple[Tensor, Tensor, Tensor, Tensor, dict, Tensor]] = []
        self.refresh()

    def __repr__(self) -> str:
        return f"FusedAdamSteps(optimizers={len(self.optimizers)})"

    def refresh(self) -> None:
        """Lay out parameters, moments and step counts as flat buffers; re-read the settings."""
        self._flat = []
        for optimizer, (grad, offsets) in zip(self.optimizers, self.gradients, strict=True):
            group = optimizer.param_groups[0]
            params = group["params"]
            states = [optimizer.state[p] for p in params]
            steps = {float(s["step"]) for s in states if s}
            if len(steps) > 1 or (steps and not all(states)):
                raise ValueError("FusedAdamSteps needs every parameter stepped the same times")
            flat_param = _lay_out(params, offsets, grad.numel())
            moments = []
            for key in ("exp_avg", "exp_avg_sq"):
                values = [
                    s[key] if key in s else torch.zeros_like(p)
                    for s, p in zip(states, params, strict=True)
                ]
                moments.append(_lay_out(values, offsets, grad.numel()))
                for state, value in zip(states, values, strict=True):
                    state[key] = value
            step = torch.tensor(steps.pop() if steps else 0.0, dtype=torch.float32)
            for state in states:
                state["step"] = step
            settings = {
                "lr": float(group["lr"]),
                "beta1": float(group["betas"][0]),
                "beta2": float(group["betas"][1]),
                "weight_decay": float(group["weight_decay"]),
                "eps": float(group["eps"]),
                "decoupled_weight_decay": bool(group.get("decoupled_weight_decay", False)),
            }
            self._flat.append((flat_param, moments[0], moments[1], step, settings, grad))

    @torch.no_grad()
    def step(self, active: Sequence[bool]) -> None:
        """One Adam step of every optimizer whose entry of ``active`` is true, with the
        gradients currently in its gradient views."""
        for (param, exp_avg, exp_avg_sq, step, settings, grad), on in zip(
            self._flat, active, strict=True
        ):
            if not on:
                continue
            adam(
                [param],
                [grad],
                [exp_avg],
                [exp_avg_sq],
                [],
                [step],
                foreach=False,
                capturable=False,
                differentiable=False,
                fused=True,
                grad_scale=None,
                found_inf=None,
                has_complex=False,
                amsgrad=False,
                maximize=False,
                **settings,
            )
