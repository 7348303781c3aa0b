"""Per-objective gradients on flat buffers, and the step that writes a combined update to ``.grad``.

Sign convention (see :mod:`gradmanip.strategies.base`): losses are MINIMISED, directions are
IMPROVEMENT directions. ``g_r = -grad(reward_loss)`` and ``g_c[k] = -grad(cost_loss_k)``; the
strategy returns an improvement direction ``update`` and the driver writes ``-update`` into
``p.grad`` so that any torch optimizer steps along ``update``.

Hot path (:meth:`GradientDriver.step` with a linear strategy, see
:attr:`~gradmanip.strategies.Strategy.is_linear`): one backward pass per objective straight into
the autograd engine; the Gram matrix of the directions is summed parameter by parameter (small
parameters are first copied into one block, large ones are read where autograd left them); the
non-finite check reads its diagonal (a NaN/inf entry makes its squared norm non-finite); the
strategy turns it into coefficients; ``-update`` is written into the ``.grad`` buffer in one pass
over the directions. No [P]-sized tensor is made beyond the gradients themselves: the flat
directions and the update of a :class:`StepResult` are built only when read.

The outcome of a step is a :class:`~gradmanip.driver.StepResult`; parameters are laid out
by :class:`~gradmanip.driver.flat.ParameterLayout`.

One module: the driver is one class whose buffers (the small-parameter block, the ``.grad``
buffer and its views) are shared by the gradient, Gram, combination and non-finite paths of a
step; splitting it would pass that state between modules on the hot path.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey
from torch import Tensor, nn

from gradmanip.driver.flat import ParameterLayout
from gradmanip.driver.step_result import StepResult, clip_factor, update_norm
from gradmanip.strategies.base import Strategy, as_episode_cost
from gradmanip.strategies.diagnostics import Value
from gradmanip.strategies.gram import DIAGONAL_RANGE, Gram, combine_into

_NONFINITE_POLICIES = ("raise", "skip")

# Parameters with at least this many entries are handled where autograd left their gradients
# (per-parameter dot products and combination); smaller ones are copied into one block first, so
# that a network of many small tensors costs a few tensor operations, not a few per tensor.
IN_PLACE_NUMEL = 1 << 14


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
        self.strategy = strategy
        self.on_nonfinite = on_nonfinite
        self.reward_keys: tuple[NestedKey, ...] = ("loss_objective", "loss_entropy")
        self.cost_key: NestedKey = "loss_cost_objective"
        self._seeds: dict[tuple[torch.dtype, torch.device, torch.Size], Tensor] = {}
        self._validated: tuple[object, ...] | None = None
        self._largest = torch.finfo(self.layout.dtype).max
        self._flat: Tensor | None = None  # [M, P] directions in layout order (directions())
        self._block: Tensor | None = None  # [M, P_small] directions of the small parameters
        self._block_views: list[Tensor] = []
        self._block_rows: list[Tensor] = []
        self._gram_slots: tuple[Tensor, Tensor, list[Tensor]] | None = None
        sizes = self.layout.sizes
        self._small = [i for i, size in enumerate(sizes) if size < IN_PLACE_NUMEL]
        self._large = [i for i, size in enumerate(sizes) if size >= IN_PLACE_NUMEL]
        self._small_numel = sum(sizes[i] for i in self._small)
        # the .grad buffer holds the small parameters first (one block), then the large ones
        self._offsets: dict[int, tuple[int, int]] = {}
        start = 0
        for index in self._small + self._large:
            self._offsets[index] = (start, start + sizes[index])
            start += sizes[index]
        self._grad_flat = self._empty(self.numel)
        self._grad_views = self._views(self._grad_flat)
        self._grad_targets = self._targets(self._grad_flat)

    @property
    def numel(self) -> int:
        """Number of scalar parameters P."""
        return self.layout.numel

    def _empty(self, *shape: int) -> Tensor:
        return torch.empty(*shape, dtype=self.layout.dtype, device=self.layout.device)

    def _views(self, grad_order: Tensor) -> list[Tensor]:
        """Per-parameter views (layout order) of a [P] tensor in the .grad buffer's order."""
        return [
            grad_order[slice(*self._offsets[index])].view(shape)
            for index, shape in enumerate(self.layout.shapes)
        ]

    # ---------------------------------------------------------------------------- gradients
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
        gradients = self._gradients(self._checked_losses(reward_loss, cost_losses), retain_graph)
        if self._flat is None or self._flat.shape[0] != len(gradients):
            self._flat = self._empty(len(gradients), self.numel)
        flat = self._pack(gradients, range(len(self.params)), self._flat)
        return flat[0], flat[1:]

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

    def _gradients(self, losses: list[Tensor], retain_graph: bool) -> list[list[Tensor]]:
        """Per objective, per parameter: -grad of the loss (backward seed -1), as autograd made
        it (unused parameters get zeros; large non-contiguous gradients are made contiguous)."""
        params = self.params
        last = len(losses) - 1
        gradients = []
        for index, loss in enumerate(losses):
            keep = retain_graph or index < last
            grads = torch.autograd.grad(
                loss,
                params,
                grad_outputs=self._seed(loss),
                retain_graph=keep,
                allow_unused=True,
            )
            grads = list(grads)
            for i, grad in enumerate(grads):
                if grad is None:
                    grads[i] = torch.zeros_like(params[i])
            for i in self._large:
                if not grads[i].is_contiguous():
                    grads[i] = grads[i].contiguous()
            gradients.append(grads)
        return gradients

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

    def _pack(
        self,
        gradients: list[list[Tensor]],
        indices: Sequence[int],
        out: Tensor,
        views: list[Tensor] | None = None,
    ) -> Tensor:
        """Fill ``out`` [M, n]: per objective, the directions of the parameters ``indices`` side
        by side (``views``: :meth:`_pack_views` of ``out``, when already made)."""
        if views is None:
            views = self._pack_views(out, indices)
        torch._foreach_copy_(views, [grads[i] for grads in gradients for i in indices])
        return out

    def _pack_views(self, block: Tensor, indices: Sequence[int]) -> list[Tensor]:
        """Views of an [M, n] block shaped like the parameters ``indices``, row by row."""
        sizes = [self.layout.sizes[i] for i in indices]
        shapes = [self.layout.shapes[i] for i in indices]
        return [
            chunk.view(shape)
            for row in block
            for chunk, shape in zip(row.split(sizes), shapes, strict=True)
        ]

    def _small_block(self, gradients: list[list[Tensor]]) -> Tensor:
        """[M, P_small]: the small parameters' directions, in a buffer reused across steps."""
        if self._block is None or self._block.shape[0] != len(gradients):
            self._block = self._empty(len(gradients), self._small_numel)
            self._block_views = self._pack_views(self._block, self._small)
            self._block_rows = list(self._block)
        return self._pack(gradients, self._small, self._block, self._block_views)

    # --------------------------------------------------------------------------------- gram
    def _gram(self, gradients: list[list[Tensor]]) -> Gram:
        """Gram matrix of the M directions: the small block's product plus, for each large
        parameter, its M (M + 1) / 2 dot products; read back to Python in one transfer."""
        rows = len(gradients)
        slots = self._gram_slots
        if slots is None or slots[1].shape[0] != rows:
            pairs = rows * (rows + 1) // 2
            entries = torch.zeros(
                rows * rows + pairs * len(self._large),
                dtype=self.layout.dtype,
                device=self.layout.device,
            )
            slots = self._gram_slots = (
                entries,
                entries[: rows * rows].view(rows, rows),
                list(entries[rows * rows :].unbind(0)),
            )
        entries, block_gram, dots = slots
        if self._small:
            block = self._small_block(gradients)
            torch.mm(block, block.T, out=block_gram)
        slot = iter(dots)
        for i in self._large:
            flat = [grads[i].view(-1) for grads in gradients]
            for a in range(rows):
                for b in range(a, rows):
                    torch.dot(flat[a], flat[b], out=next(slot))
        values = entries.tolist()
        gram = [values[a * rows : (a + 1) * rows] for a in range(rows)]
        position = rows * rows
        for _ in self._large:
            for a in range(rows):
                for b in range(a, rows):
                    gram[a][b] += values[position]
                    if b != a:
                        gram[b][a] += values[position]
                    position += 1
        return gram

    def _targets(self, grad_order: Tensor) -> list[Tensor]:
        """1-D regions of a [P] tensor in the .grad buffer's order: the small block's, then one
        per large parameter."""
        regions = [grad_order[: self._small_numel]] if self._small else []
        return regions + [grad_order[slice(*self._offsets[i])] for i in self._large]

    def _sources(self, gradients: list[list[Tensor]], block: Tensor | None) -> list[list[Tensor]]:
        """Per target region, the M 1-D directions to combine into it."""
        rows = [] if block is None else [self._block_rows if block is self._block else list(block)]
        return rows + [[grads[i].view(-1) for grads in gradients] for i in self._large]

    @staticmethod
    def _combine(
        targets: list[Tensor], sources: list[list[Tensor]], coefficients: list[float]
    ) -> None:
        """``sum_i c_i d_i`` into every target region, one pass each."""
        for target, directions in zip(targets, sources, strict=True):
            combine_into(target, directions, coefficients)

    def _update_from(self, gradients: list[list[Tensor]], coefficients: list[float]) -> Tensor:
        """The update ``sum_i c_i d_i`` [P] in layout order, combined exactly as ``.grad`` was
        (same regions, same operations)."""
        block = None
        if self._small:
            block = self._pack(
                gradients, self._small, self._empty(len(gradients), self._small_numel)
            )
        in_grad_order = self._empty(self.numel)
        self._combine(self._targets(in_grad_order), self._sources(gradients, block), coefficients)
        update = self._empty(self.numel)
        torch._foreach_copy_(self.layout.views(update), self._views(in_grad_order))
        return update

    def _new_directions(self, gradients: list[list[Tensor]]) -> Tensor:
        """A new [M, P] tensor of the directions in layout order."""
        return self._pack(
            gradients, range(len(self.params)), self._empty(len(gradients), self.numel)
        )

    # --------------------------------------------------------------------------------- step
    def set_keys(
        self, reward: NestedKey | Sequence[NestedKey] | None = None, cost: NestedKey | None = None
    ) -> GradientDriver:
        """Rename the loss entries :meth:`backward` reads: ``reward`` (one key or several,
        summed; absent ones are skipped) and ``cost`` (the [K] cost losses)."""
        if reward is not None:
            self.reward_keys = (reward,) if isinstance(reward, (str, tuple)) else tuple(reward)
        if cost is not None:
            self.cost_key = cost
        return self

    def backward(
        self, losses: TensorDictBase, episode_cost: Tensor, max_norm: float | None = None
    ) -> StepResult:
        """:meth:`step` on a TensorDict of per-objective losses, e.g. the output of
        :class:`~gradmanip.objectives.SafePPOLoss` or
        :class:`~gradmanip.objectives.PerObjectiveLoss`: the reward loss is the sum of the
        entries under :attr:`reward_keys` (default ``loss_objective`` and, if present,
        ``loss_entropy``), the cost losses are the [K] entry under :attr:`cost_key` (default
        ``loss_cost_objective``). Replaces ``loss.backward()`` in a TorchRL training loop."""
        present = [key for key in self.reward_keys if key in losses.keys(True)]
        if not present or self.cost_key not in losses.keys(True):
            raise KeyError(
                f"backward needs the reward loss {self.reward_keys[0]!r} and the cost losses "
                f"{self.cost_key!r} in its input (rename them with set_keys); present keys: "
                f"{sorted(map(str, losses.keys(True, True)))}"
            )
        reward_loss = functools.reduce(torch.add, (losses.get(key) for key in present))
        return self.step(reward_loss, losses.get(self.cost_key), episode_cost, max_norm)

    def step(
        self,
        reward_loss: Tensor,
        cost_losses: Tensor | Sequence[Tensor],
        episode_cost: Tensor,
        max_norm: float | None = None,
    ) -> StepResult:
        """directions -> strategy -> write ``-update`` into ``.grad``.

        ``episode_cost`` is J_c_hat, [K] (a scalar is read as K = 1). ``max_norm`` scales the
        update down to at most that norm (as ``clip_grad_norm_`` would, at no extra pass for
        linear strategies). A NaN or infinity in a direction or in the update raises
        FloatingPointError naming it, or with ``on_nonfinite="skip"`` returns
        ``StepResult(skipped=True)`` with ``.grad`` untouched.
        """
        if max_norm is not None and not (isinstance(max_norm, (int, float)) and max_norm > 0):
            raise ValueError(f"max_norm must be a positive number or None, got {max_norm!r}")
        gradients = self._gradients(self._checked_losses(reward_loss, cost_losses), False)
        result = self._update_into_grad(gradients, episode_cost, max_norm)
        if not result.skipped:
            self._attach_grads()
        return result

    def _update_into_grad(
        self, gradients: list[list[Tensor]], episode_cost: Tensor, max_norm: float | None
    ) -> StepResult:
        """Strategy on the directions; ``-update`` into the grad buffer if finite."""
        directions = functools.partial(self._new_directions, gradients)
        gram: Gram | None = self._gram(gradients)
        diagonal = [row[index] for index, row in enumerate(gram)]
        low, high = DIAGONAL_RANGE
        if not all(low <= value <= high for value in diagonal):
            # a NaN/inf entry makes its squared norm non-finite (so does overflow of finite
            # entries: only then are the directions inspected element-wise)
            if not all(math.isfinite(value) for value in diagonal):
                names = self._nonfinite_objectives(gradients)
                if names:
                    return self._nonfinite(names, directions, {})
            gram = None  # extreme scales: the strategy computes a rescaled Gram
        episode_cost = self._episode_cost(episode_cost)
        strategy = self.strategy
        if gram is None or not getattr(strategy, "is_linear", False):
            return self._aggregate_into_grad(gradients, episode_cost, max_norm)
        # inputs are checked once per strategy, K and episode-cost layout
        signature = (id(strategy), len(gram), episode_cost.shape, episode_cost.dtype)
        coefficients, diagnostics = strategy.coefficients(
            gram, episode_cost, validate=signature != self._validated
        )
        self._validated = signature
        factor = 1.0
        norm: Callable[[], float] | float = functools.partial(update_norm, gram, coefficients)
        if max_norm is not None:
            norm = update_norm(gram, coefficients)
            factor = clip_factor(norm, max_norm)
            norm = factor * norm
        applied = [factor * c for c in coefficients] if factor != 1.0 else coefficients
        result = StepResult(
            diagnostics,
            directions,
            update=functools.partial(self._update_from, gradients, applied),
            coefficients=coefficients,
            clip_factor=factor,
            norm=norm,
            device=self.layout.device,
        )
        # |update_i| <= sum_k |c_k| max_k |d_k,i| <= sum_k |c_k| sqrt(diag_k): finite if small
        bound = sum(abs(c) * math.sqrt(d) for c, d in zip(applied, diagonal, strict=True))
        if not bound < 0.5 * self._largest:
            candidate = result.update
            if not bool(torch.isfinite(candidate).all()):
                return self._nonfinite(["update"], directions, diagnostics)
            self._write_negated(candidate)
            return result
        # -update straight into the .grad buffer: one pass over the directions
        block = self._block if self._small else None
        self._combine(self._grad_targets, self._sources(gradients, block), [-c for c in applied])
        return result

    def _aggregate_into_grad(
        self, gradients: list[list[Tensor]], episode_cost: Tensor, max_norm: float | None
    ) -> StepResult:
        """Generic path: the strategy's ``aggregate`` on the flat directions."""
        flat = self._new_directions(gradients)
        update, diagnostics = self.strategy.aggregate(flat[0], flat[1:], episode_cost)
        update = update.detach().to(self.layout.dtype)
        if not math.isfinite(float(update.sum())) and not bool(torch.isfinite(update).all()):
            return self._nonfinite(["update"], flat, diagnostics)
        norm = float(update.norm())
        factor = 1.0 if max_norm is None else clip_factor(norm, max_norm)
        if factor != 1.0:
            update = update * factor
        self._write_negated(update)
        return StepResult(diagnostics, flat, update=update, clip_factor=factor, norm=factor * norm)

    def _write_negated(self, update: Tensor) -> None:
        torch._foreach_copy_(self._grad_views, self.layout.views(update))
        self._grad_flat.neg_()

    def _episode_cost(self, episode_cost: Tensor) -> Tensor:
        """J_c_hat as a float64 [K] tensor on the directions' device (a scalar is K = 1), whatever
        the directions' dtype: the switching decisions read it at full precision."""
        device = self.layout.device
        if (
            isinstance(episode_cost, Tensor)
            and episode_cost.ndim == 1
            and episode_cost.dtype == torch.float64
            and episode_cost.device == device
        ):
            return episode_cost
        episode_cost = as_episode_cost(episode_cost).to(device)
        if episode_cost.ndim == 0:
            episode_cost = episode_cost.reshape(1)
        if not episode_cost.is_floating_point():
            episode_cost = episode_cost.double()
        return episode_cost

    def _nonfinite(
        self,
        names: list[str],
        directions: Callable[[], Tensor] | Tensor,
        diagnostics: Mapping[str, Value | Tensor],
    ) -> StepResult:
        if self.on_nonfinite == "raise":
            raise FloatingPointError(
                f"non-finite values in {', '.join(names)}: parameters were not updated; check "
                "the losses (or use GradientDriver(..., on_nonfinite='skip'))"
            )
        return StepResult(
            diagnostics, directions, skipped=True, nonfinite=names, device=self.layout.device
        )

    @staticmethod
    def _nonfinite_objectives(gradients: list[list[Tensor]]) -> list[str]:
        """Names of the objectives whose direction holds a NaN or an infinity."""
        names = ["reward"] + [f"cost[{k}]" for k in range(len(gradients) - 1)]
        return [
            name
            for name, grads in zip(names, gradients, strict=True)
            if not all(bool(torch.isfinite(grad).all()) for grad in grads)
        ]

    def apply(self, update: Tensor) -> None:
        """Write ``-update`` into ``p.grad`` (views of one flat buffer; overwrites)."""
        if update.shape != (self.layout.numel,):
            raise ValueError(
                f"update must have shape [{self.layout.numel}], got {tuple(update.shape)}"
            )
        self._write_negated(update.detach().to(self.layout.dtype))
        self._attach_grads()

    def _attach_grads(self) -> None:
        """Point each ``p.grad`` at its view of the .grad buffer (again after a zero_grad)."""
        for param, grad in zip(self.params, self._grad_views, strict=True):
            if param.grad is not grad:
                param.grad = grad

    def __repr__(self) -> str:
        return (
            f"GradientDriver(numel={self.layout.numel}, strategy={self.strategy!r}, "
            f"on_nonfinite={self.on_nonfinite!r})"
        )
