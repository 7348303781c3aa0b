"""Per-objective gradients on flat buffers, and the step that writes a combined update to ``.grad``.

Sign convention (see :mod:`gradmanip.strategies.base`): losses are MINIMISED, directions are
IMPROVEMENT directions. ``g_r = -grad(reward_loss)`` and ``g_c[k] = -grad(cost_loss_k)``; the
strategy returns an improvement direction ``update`` and the driver writes ``-update`` into
``p.grad`` so that any torch optimizer steps along ``update``.

Hot path (:meth:`GradientDriver.step`): one backward pass per objective straight into the
autograd engine, each gradient copied once into a row of a [1 + K, P] buffer; the non-finite check
reads the Gram diagonal (a NaN/inf entry makes its squared norm non-finite); linear strategies
(:attr:`~gradmanip.strategies.Strategy.is_linear`) return coefficients and ``-update`` is one
matrix product written straight into the ``.grad`` buffer.

Flat-vector helpers for natural-gradient code: :func:`flat_params`, :func:`set_flat_params`,
:func:`unflatten` and :class:`ParameterLayout`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.autograd.graph
from torch import Tensor, nn
from torch.overrides import has_torch_function

from gradmanip.strategies.base import Strategy
from gradmanip.strategies.linear import DIAGONAL_RANGE, Gram

_NONFINITE_POLICIES = ("raise", "skip")

_engine_backward = getattr(torch.autograd.graph, "_engine_run_backward", None)


class ParameterLayout:
    """Fixed order, shapes and offsets of a list of parameters in a flat [P] vector."""

    def __init__(self, params: Iterable[Tensor]) -> None:
        unique: dict[int, Tensor] = {}
        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError(f"params must be tensors, got {type(param).__name__}")
            unique.setdefault(id(param), param)
        self.params: list[Tensor] = list(unique.values())
        if not self.params:
            raise ValueError("params is empty; pass e.g. policy.parameters()")
        first = self.params[0]
        for param in self.params:
            if param.dtype != first.dtype or param.device != first.device:
                raise ValueError(
                    "all params must share one dtype and device, got "
                    f"{first.dtype}/{first.device} and {param.dtype}/{param.device}"
                )
        self.shapes = [param.shape for param in self.params]
        self.sizes = [param.numel() for param in self.params]
        self.numel = sum(self.sizes)
        self.dtype = first.dtype
        self.device = first.device

    def views(self, flat: Tensor) -> list[Tensor]:
        """Views of ``flat`` [P] shaped like each parameter (no copy)."""
        if flat.shape != (self.numel,):
            raise ValueError(f"flat vector must have shape [{self.numel}], got {tuple(flat.shape)}")
        return [
            chunk.view(shape)
            for chunk, shape in zip(flat.split(self.sizes), self.shapes, strict=True)
        ]

    def __repr__(self) -> str:
        return f"ParameterLayout(num_params={len(self.params)}, numel={self.numel})"


def flat_params(params: Iterable[Tensor]) -> Tensor:
    """Detached copy of the parameters as one flat [P] vector (order of ``params``)."""
    layout = params if isinstance(params, ParameterLayout) else ParameterLayout(params)
    return torch.cat([param.detach().reshape(-1) for param in layout.params])


def set_flat_params(params: Iterable[Tensor], flat: Tensor) -> None:
    """Copy a flat [P] vector into the parameters in place (no autograd tracking)."""
    layout = params if isinstance(params, ParameterLayout) else ParameterLayout(params)
    with torch.no_grad():
        torch._foreach_copy_(layout.params, layout.views(flat.to(layout.dtype)))


def unflatten(flat: Tensor, params: Iterable[Tensor]) -> list[Tensor]:
    """Views of ``flat`` [P] with the shapes of ``params`` (inverse of flattening)."""
    layout = params if isinstance(params, ParameterLayout) else ParameterLayout(params)
    return layout.views(flat)


@dataclass
class StepResult:
    """Outcome of :meth:`GradientDriver.step`.

    ``update`` is the improvement direction [P] (None when skipped); ``reward_direction`` [P] and
    ``cost_direction`` [K, P] are views of the driver's buffer, overwritten by the next call (clone
    to keep them). ``skipped`` is True when a non-finite value was found with
    ``on_nonfinite="skip"``; ``nonfinite`` then names the objectives affected.
    """

    update: Tensor | None
    diagnostics: dict[str, Tensor]
    reward_direction: Tensor
    cost_direction: Tensor
    skipped: bool = False
    nonfinite: list[str] = field(default_factory=list)


class GradientDriver:
    """Compute per-objective directions on one shared forward, aggregate, write ``.grad``.

    Args:
        params: the parameters to differentiate (e.g. ``actor.parameters()``); duplicates are
            dropped, all must share a dtype and device.
        strategy: a :class:`~gradmanip.strategies.Strategy`.
        on_nonfinite: ``"raise"`` (default) raises FloatingPointError naming the objective whose
            direction is non-finite; ``"skip"`` leaves ``.grad`` untouched and reports
            ``StepResult.skipped``.

    ``.grad`` of each parameter is set to a view of one flat buffer and overwritten (not
    accumulated) by :meth:`step` and :meth:`apply`; :meth:`directions` and skipped steps leave
    ``.grad`` as it was.
    """

    def __init__(
        self, params: Iterable[nn.Parameter], strategy: Strategy, on_nonfinite: str = "raise"
    ) -> None:
        if not hasattr(strategy, "aggregate"):
            raise TypeError(f"strategy must be a Strategy, got {type(strategy).__name__}")
        if on_nonfinite not in _NONFINITE_POLICIES:
            raise ValueError(
                f"on_nonfinite must be one of {_NONFINITE_POLICIES}, got {on_nonfinite!r}"
            )
        self.layout = ParameterLayout(p for p in params if p.requires_grad)
        self.params = self.layout.params
        self._inputs = tuple(self.params)
        # parameters overriding torch functions take the public autograd entry point
        self._engine = None if has_torch_function(self._inputs) else _engine_backward
        self.strategy = strategy
        self.on_nonfinite = on_nonfinite
        self._directions: Tensor | None = None
        self._direction_rows: list[list[Tensor]] = []
        self._split: tuple[Tensor, Tensor] | None = None
        self._seeds: dict[tuple[torch.dtype, torch.device, torch.Size], Tensor] = {}
        self._validated: tuple[object, ...] | None = None
        self._largest = torch.finfo(self.layout.dtype).max
        self._grad_flat = torch.empty(
            self.layout.numel, dtype=self.layout.dtype, device=self.layout.device
        )
        self._grad_views = self.layout.views(self._grad_flat)

    @property
    def numel(self) -> int:
        """Number of scalar parameters P."""
        return self.layout.numel

    def _buffer(self, rows: int) -> Tensor:
        if self._directions is None or self._directions.shape[0] != rows:
            self._directions = torch.empty(
                rows, self.layout.numel, dtype=self.layout.dtype, device=self.layout.device
            )
            self._direction_rows = [self.layout.views(row) for row in self._directions]
            self._split = (self._directions[0], self._directions[1:])
        return self._directions

    def directions(
        self,
        reward_loss: Tensor,
        cost_losses: Tensor | Sequence[Tensor],
        retain_graph: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Improvement directions (g_r [P], g_c [K, P]) from the losses of one shared forward.

        ``cost_losses`` is one scalar loss, a sequence of K scalar losses or a [K] tensor. The
        graph is retained between objectives; ``retain_graph`` keeps it after the last one too.
        The returned tensors are views of a buffer reused by the next call; ``.grad`` is left as
        it was.
        """
        self._backward(self._checked_losses(reward_loss, cost_losses), retain_graph)
        return self._split

    def _checked_losses(
        self, reward_loss: Tensor, cost_losses: Tensor | Sequence[Tensor]
    ) -> list[Tensor]:
        losses = [reward_loss, *self._cost_loss_list(cost_losses)]
        for index, loss in enumerate(losses):
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                name = "reward_loss" if index == 0 else f"cost_losses[{index - 1}]"
                raise ValueError(f"{name} must be a scalar tensor, got {loss!r:.80}")
            if not loss.requires_grad:
                name = "reward_loss" if index == 0 else f"cost_losses[{index - 1}]"
                raise ValueError(f"{name} does not require grad; compute it from the parameters")
        return losses

    def _backward(self, losses: list[Tensor], retain_graph: bool) -> None:
        """Fill the direction buffer with -grad of each loss (backward seed -1)."""
        self._buffer(len(losses))
        params = self.params
        last = len(losses) - 1
        for index, loss in enumerate(losses):
            keep = retain_graph or index < last
            if self._engine is not None and type(loss) is Tensor:
                # the engine call behind torch.autograd.grad, minus its per-call Python argument
                # normalisation (the seed is built to match the loss; the inputs are fixed)
                grads = self._engine(
                    (loss,), (self._seed(loss),), keep, False, self._inputs, True, False
                )
            else:
                grads = torch.autograd.grad(
                    loss,
                    params,
                    grad_outputs=self._seed(loss),
                    retain_graph=keep,
                    allow_unused=True,
                )
            rows = self._direction_rows[index]
            if any(grad is None for grad in grads):  # unused parameters: zero direction
                for row, grad in zip(rows, grads, strict=True):
                    if grad is None:
                        row.zero_()
                    else:
                        row.copy_(grad)
            else:
                torch._foreach_copy_(rows, grads)

    def _set_grads(self, grads: Sequence[Tensor | None]) -> None:
        for param, grad in zip(self.params, grads, strict=True):
            if param.grad is not grad:
                param.grad = grad

    def _seed(self, loss: Tensor) -> Tensor:
        """Backward seed -1 (negated gradients at no extra cost), cached per dtype/device/shape."""
        key = (loss.dtype, loss.device, loss.shape)
        seed = self._seeds.get(key)
        if seed is None:
            seed = self._seeds[key] = torch.full_like(loss, -1.0, requires_grad=False)
        return seed

    @staticmethod
    def _cost_loss_list(cost_losses: Tensor | Sequence[Tensor]) -> list[Tensor]:
        if isinstance(cost_losses, Tensor):
            if cost_losses.ndim > 1:
                raise ValueError(
                    f"cost_losses must be a scalar or a [K] tensor, got {tuple(cost_losses.shape)}"
                )
            return [cost_losses] if cost_losses.ndim == 0 else list(cost_losses.unbind(0))
        cost_list = list(cost_losses)
        if not cost_list:
            raise ValueError("cost_losses is empty; pass at least one cost loss")
        return cost_list

    def step(
        self,
        reward_loss: Tensor,
        cost_losses: Tensor | Sequence[Tensor],
        episode_cost: Tensor,
    ) -> StepResult:
        """directions -> strategy -> write ``-update`` into ``.grad``.

        ``episode_cost`` is J_c_hat, [K] (a scalar is read as K = 1). A NaN or infinity in a
        direction or in the update raises FloatingPointError naming it, or with
        ``on_nonfinite="skip"`` returns ``StepResult(skipped=True)`` with ``.grad`` untouched.
        """
        self._backward(self._checked_losses(reward_loss, cost_losses), retain_graph=False)
        result = self._update_into_grad(episode_cost)
        if not result.skipped:
            self._set_grads(self._grad_views)
        return result

    def _update_into_grad(self, episode_cost: Tensor) -> StepResult:
        """Strategy on the filled direction buffer; ``-update`` into the grad buffer if finite."""
        matrix = self._directions
        g_r, g_c = self._split
        gram: Gram | None = torch.mm(matrix, matrix.T).tolist()
        diagonal = [row[index] for index, row in enumerate(gram)]
        low, high = DIAGONAL_RANGE
        if not all(low <= value <= high for value in diagonal):
            # a NaN/inf entry makes its squared norm non-finite (so does overflow of finite
            # entries: only then are the rows inspected element-wise)
            if not all(math.isfinite(value) for value in diagonal):
                names = self._nonfinite_objectives()
                if names:
                    return self._nonfinite(names, g_r, g_c, {})
            gram = None  # extreme scales: the strategy computes a rescaled Gram
        episode_cost = self._episode_cost(episode_cost, g_r)
        strategy = self.strategy
        if not getattr(strategy, "is_linear", False):  # generic path: any aggregate()
            update, diagnostics = strategy.aggregate(g_r, g_c, episode_cost)
            if not math.isfinite(float(update.sum())) and not bool(torch.isfinite(update).all()):
                return self._nonfinite(["update"], g_r, g_c, diagnostics)
            torch.neg(update.detach().to(self._grad_flat.dtype), out=self._grad_flat)
            return StepResult(update, diagnostics, g_r, g_c)
        # inputs are checked once per strategy, K and episode-cost layout (the rest of the
        # directions' layout is fixed by the driver)
        signature = (
            id(strategy),
            matrix.shape[0],
            episode_cost.shape,
            episode_cost.dtype,
            episode_cost.device,
        )
        coefficients, diagnostics = strategy.coefficients(
            g_r, g_c, episode_cost, gram, validate=signature != self._validated
        )
        self._validated = signature
        negated = torch.tensor(
            [[-c for c in coefficients]], dtype=matrix.dtype, device=matrix.device
        )
        # |update_i| <= sum_k |c_k| max_k |d_k,i| <= sum_k |c_k| sqrt(max diag): finite if small
        bound = sum(abs(c) for c in coefficients) * math.sqrt(max(diagonal)) if gram else math.inf
        if not bound < 0.5 * self._largest:
            candidate = torch.mm(negated, matrix)
            if not bool(torch.isfinite(candidate).all()):
                return self._nonfinite(["update"], g_r, g_c, diagnostics)
            self._grad_flat.copy_(candidate.view(-1))
        else:
            # -update straight into the .grad buffer: one pass over the directions
            torch.mm(negated, matrix, out=self._grad_flat.view(1, -1))
        return StepResult(torch.neg(self._grad_flat), diagnostics, g_r, g_c)

    @staticmethod
    def _episode_cost(episode_cost: Tensor, like: Tensor) -> Tensor:
        """J_c_hat as a float [K] tensor on the directions' device (a scalar is K = 1)."""
        if (
            isinstance(episode_cost, Tensor)
            and episode_cost.ndim == 1
            and episode_cost.is_floating_point()
            and episode_cost.device == like.device
        ):
            return episode_cost
        episode_cost = torch.as_tensor(episode_cost, device=like.device)
        if episode_cost.ndim == 0:
            episode_cost = episode_cost.reshape(1)
        if not episode_cost.is_floating_point():
            episode_cost = episode_cost.to(like.dtype)
        return episode_cost

    def _nonfinite(
        self, names: list[str], g_r: Tensor, g_c: Tensor, diagnostics: dict[str, Tensor]
    ) -> StepResult:
        if self.on_nonfinite == "raise":
            raise FloatingPointError(
                f"non-finite values in {', '.join(names)}: parameters were not updated; check "
                "the losses (or use GradientDriver(..., on_nonfinite='skip'))"
            )
        return StepResult(None, diagnostics, g_r, g_c, skipped=True, nonfinite=names)

    def _nonfinite_objectives(self) -> list[str]:
        """Names of the objectives whose direction holds a NaN or an infinity."""
        assert self._directions is not None
        finite_rows = torch.isfinite(self._directions).all(dim=1).tolist()
        names = ["reward"] + [f"cost[{k}]" for k in range(len(finite_rows) - 1)]
        return [name for name, ok in zip(names, finite_rows, strict=True) if not ok]

    def apply(self, update: Tensor) -> None:
        """Write ``-update`` into ``p.grad`` (views of one flat buffer; overwrites)."""
        if update.shape != (self.layout.numel,):
            raise ValueError(
                f"update must have shape [{self.layout.numel}], got {tuple(update.shape)}"
            )
        torch.neg(update.detach().to(self._grad_flat.dtype), out=self._grad_flat)
        self._set_grads(self._grad_views)

    def __repr__(self) -> str:
        return (
            f"GradientDriver(numel={self.layout.numel}, strategy={self.strategy!r}, "
            f"on_nonfinite={self.on_nonfinite!r})"
        )
