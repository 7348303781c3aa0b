"""The strategy contract: a TensorDict module that turns per-objective directions into one update.

Sign convention: every direction is an IMPROVEMENT direction. ``g_r`` increases the reward
surrogate, ``g_c[k]`` decreases the k-th cost surrogate, and the returned ``update`` is the
direction the parameters should move along (a minimising optimizer receives ``-update`` in
``.grad``, see :class:`gradmanip.driver.GradientDriver`).

Keys (renamable with :meth:`Strategy.set_keys`):

- in:  ``reward_direction`` [P], ``cost_direction`` [K, P], ``episode_cost`` [K] (J_c_hat),
- out: ``update`` [P] and diagnostics under ``("strategy", name)``.

Mode codes written to ``("strategy", "mode")``: 0 = both objectives, 1 = reward only,
2 = cost only.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import Tensor

from gradmanip.strategies.diagnostics import Value, as_tensors
from gradmanip.strategies.gram import Gram, combine, direction_gram

MODE_BOTH = 0
MODE_REWARD_ONLY = 1
MODE_COST_ONLY = 2

DEFAULT_KEYS: dict[str, NestedKey] = {
    "reward_direction": "reward_direction",
    "cost_direction": "cost_direction",
    "episode_cost": "episode_cost",
    "update": "update",
    "diagnostics": "strategy",
}


def as_episode_cost(episode_cost: Tensor | float | list[float]) -> Tensor:
    """J_c_hat as float64: Python numbers become float64 tensors (never the float32 default
    dtype, which would move 25.1 to 25.1000004) and float tensors are upcast; other tensors are
    returned unchanged for the caller's validation to reject."""
    if isinstance(episode_cost, Tensor):
        return episode_cost.double() if episode_cost.is_floating_point() else episode_cost
    return torch.as_tensor(episode_cost, dtype=torch.float64)


class Strategy(TensorDictModuleBase):
    """Base class of every gradient-manipulation strategy.

    Subclasses implement :meth:`_aggregate` (and, if stateful, :meth:`_update_state` and
    :meth:`reset`, keeping their state in buffers so that ``state_dict()`` checkpoints it). They
    list the names of the diagnostics they write in ``diagnostic_names``.

    Public entry points validate their inputs: a missing key raises ``KeyError`` naming it; a wrong
    shape, dtype or device raises ``ValueError`` naming the key.
    """

    name: ClassVar[str] = "strategy"
    diagnostic_names: tuple[str, ...] = ()
    #: whether scaling every direction by s > 0 scales the update by s (the property suite
    #: checks it); False for rules that size their step to a radius (CPO, PCPO)
    positively_homogeneous: ClassVar[bool] = True

    def __init__(self, num_constraints: int | None = None) -> None:
        super().__init__()
        if num_constraints is not None and (
            isinstance(num_constraints, bool)
            or not isinstance(num_constraints, int)
            or num_constraints < 1
        ):
            raise ValueError(
                f"num_constraints must be a positive int or None, got {num_constraints}"
            )
        self._num_constraints = num_constraints
        self._keys: dict[str, NestedKey] = dict(DEFAULT_KEYS)
        self._refresh_keys()

    # ----------------------------------------------------------------------------------- keys
    @property
    def num_constraints(self) -> int | None:
        """Number of constraints K this strategy accepts (None = any K >= 1)."""
        return self._num_constraints

    @property
    def keys(self) -> dict[str, NestedKey]:
        """Current key names (copy): reward_direction, cost_direction, episode_cost, update,
        diagnostics (the prefix of the diagnostic entries)."""
        return dict(self._keys)

    def set_keys(self, **keys: NestedKey) -> Strategy:
        """Rename keys, e.g. ``set_keys(reward_direction="g_r", diagnostics=("logs", "pcrpo"))``."""
        for field, key in keys.items():
            if field not in DEFAULT_KEYS:
                raise KeyError(f"unknown key field {field!r}; valid fields: {sorted(DEFAULT_KEYS)}")
            if not isinstance(key, (str, tuple)) or (isinstance(key, tuple) and not key):
                raise TypeError(f"key for {field!r} must be a str or a tuple of str, got {key!r}")
            self._keys[field] = key
        self._refresh_keys()
        return self

    def _diagnostic_key(self, name: str) -> NestedKey:
        prefix = self._keys["diagnostics"]
        prefix = prefix if isinstance(prefix, tuple) else (prefix,)
        return (*prefix, name)

    def _refresh_keys(self) -> None:
        self.in_keys = [
            self._keys["reward_direction"],
            self._keys["cost_direction"],
            self._keys["episode_cost"],
        ]
        self.out_keys = [self._keys["update"]] + [
            self._diagnostic_key(name) for name in self.diagnostic_names
        ]

    # ------------------------------------------------------------------------------ interface
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Read the directions and J_c_hat from ``tensordict``, write the update and diagnostics."""
        g_r = self._read(tensordict, "reward_direction")
        g_c = self._read(tensordict, "cost_direction")
        episode_cost = self._read(tensordict, "episode_cost")
        update, diagnostics = self.aggregate(g_r, g_c, episode_cost)
        tensordict.set(self._keys["update"], update)
        for name, value in diagnostics.items():
            tensordict.set(self._diagnostic_key(name), value)
        return tensordict

    def aggregate(
        self, g_r: Tensor, g_c: Tensor, episode_cost: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Fast tensor path: validate, then return (update [P], diagnostics)."""
        self.check_inputs(g_r, g_c, episode_cost)
        return self._aggregate(g_r, g_c, as_episode_cost(episode_cost))

    @property
    def is_linear(self) -> bool:
        """Whether the update is ``sum_i c_i d_i`` with coefficients c that depend only on the
        Gram matrix of the directions and J_c_hat (see :meth:`coefficients`); callers may then
        combine the directions in place, e.g. straight into ``.grad``."""
        return type(self)._coefficients is not Strategy._coefficients

    def coefficients(
        self, gram: Gram, episode_cost: Tensor, validate: bool = True
    ) -> tuple[list[float], dict[str, Value]]:
        """Coefficient fast path of linear strategies (see :attr:`is_linear`): returns
        (c [1 + K floats], diagnostics) with ``update = c[0] g_r + sum_k c[1 + k] g_c[k]``;
        the diagnostics are Python values (:func:`~gradmanip.strategies.diagnostics.as_tensors`
        gives the tensors ``aggregate`` returns).

        ``gram`` is the (1 + K) x (1 + K) Gram matrix of (g_r, g_c[0], ..., g_c[K-1]) as nested
        Python floats, known up to a common positive factor (see
        :func:`gradmanip.strategies.gram.direction_gram`). ``validate=False`` skips
        :meth:`check_gram` for callers that already ran it on inputs of the same sizes.
        """
        if not self.is_linear:
            raise TypeError(
                f"{type(self).__name__} is not a linear strategy; use aggregate() instead"
            )
        if validate:
            self.check_gram(gram, episode_cost)
        return self._coefficients(gram, episode_cost)

    def update_state(self, episode_cost: Tensor) -> None:
        """Advance the per-epoch state (multipliers, PID terms, slack) with the latest J_c_hat [K].

        Call once per epoch (policy iteration), before the policy update. Python numbers and
        float tensors are read as float64, the dtype of every strategy state.
        """
        episode_cost = as_episode_cost(episode_cost)
        if episode_cost.ndim != 1 or not episode_cost.is_floating_point():
            raise ValueError(
                f"{self._keys['episode_cost']!r} must be a float tensor of shape [K], got "
                f"shape {tuple(episode_cost.shape)} and dtype {episode_cost.dtype}"
            )
        self._check_count(episode_cost.shape[0], "episode_cost")
        if not torch.isfinite(episode_cost).all():
            raise ValueError(
                f"{self._keys['episode_cost']!r} must be finite, got {episode_cost.tolist()}"
            )
        self._update_state(episode_cost)

    def reset(self) -> None:
        """Return to the initial state (no-op for stateless strategies)."""

    # ------------------------------------------------------------------------ for subclasses
    def _aggregate(
        self, g_r: Tensor, g_c: Tensor, episode_cost: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The update; linear strategies get it from their coefficients, others override this."""
        if not self.is_linear:
            raise NotImplementedError(f"{type(self).__name__} must implement _aggregate")
        coefficients, diagnostics = self._coefficients(direction_gram(g_r, g_c), episode_cost)
        return combine(g_r, g_c, coefficients), as_tensors(diagnostics, g_r.device)

    def _coefficients(
        self, gram: Gram, episode_cost: Tensor
    ) -> tuple[list[float], dict[str, Value]]:
        """Linear strategies implement this: coefficients from the Gram matrix and J_c_hat, and
        diagnostics as Python values; :meth:`_aggregate` then combines the directions."""
        raise NotImplementedError(f"{type(self).__name__} has no coefficient fast path")

    def _update_state(self, episode_cost: Tensor) -> None:
        """Per-epoch state update on a validated J_c_hat [K]; stateless strategies do nothing."""

    # ----------------------------------------------------------------------------- validation
    def _read(self, tensordict: TensorDictBase, field: str) -> Tensor:
        key = self._keys[field]
        value = tensordict.get(key, None)
        if value is None:
            raise KeyError(
                f"{type(self).__name__} needs the entry {key!r} ({field}) in its input; "
                f"present keys: {sorted(map(str, tensordict.keys(True, True)))}"
            )
        return value

    def _check_count(self, count: int, what: str) -> None:
        expected = self._num_constraints
        if expected is not None and count != expected:
            raise ValueError(
                f"{self._keys[what]!r} carries {count} constraints but {type(self).__name__} "
                f"was configured for {expected}; give its per-constraint settings one value per "
                "constraint (or a single float shared by all)"
            )

    def check_inputs(self, g_r: Tensor, g_c: Tensor, episode_cost: Tensor) -> None:
        """Check shapes [P], [K, P], [K], float dtypes, devices (ValueError naming the key)."""
        keys = self._keys
        for field, value in (
            ("reward_direction", g_r),
            ("cost_direction", g_c),
            ("episode_cost", episode_cost),
        ):
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"{keys[field]!r} must be a torch.Tensor, got {type(value).__name__}"
                )
            if not value.is_floating_point():
                raise ValueError(f"{keys[field]!r} must be a floating tensor, got {value.dtype}")
        if g_r.ndim != 1:
            raise ValueError(
                f"{keys['reward_direction']!r} must have shape [P], got {tuple(g_r.shape)}"
            )
        if g_c.ndim != 2 or g_c.shape[1] != g_r.shape[0] or g_c.shape[0] < 1:
            raise ValueError(
                f"{keys['cost_direction']!r} must have shape [K, P] = [K, {g_r.shape[0]}] with "
                f"K >= 1, got {tuple(g_c.shape)} (use g_c.unsqueeze(0) for one constraint)"
            )
        if episode_cost.shape != (g_c.shape[0],):
            raise ValueError(
                f"{keys['episode_cost']!r} must have shape [K] = [{g_c.shape[0]}], "
                f"got {tuple(episode_cost.shape)}"
            )
        if g_c.dtype != g_r.dtype:
            raise ValueError(
                f"{keys['cost_direction']!r} has dtype {g_c.dtype} but "
                f"{keys['reward_direction']!r} has {g_r.dtype}; cast them to one dtype"
            )
        for field, value in (("cost_direction", g_c), ("episode_cost", episode_cost)):
            if value.device != g_r.device:
                raise ValueError(
                    f"{keys[field]!r} is on {value.device} but {keys['reward_direction']!r} is on "
                    f"{g_r.device}; move them to one device"
                )
        self._check_count(g_c.shape[0], "cost_direction")

    def check_gram(self, gram: Gram, episode_cost: Tensor) -> None:
        """Check that ``gram`` is a square (1 + K) x (1 + K) nested list of floats matching
        ``episode_cost`` [K] (a float tensor); ValueError naming the argument otherwise."""
        key = self._keys["episode_cost"]
        if not isinstance(episode_cost, Tensor) or not episode_cost.is_floating_point():
            raise ValueError(
                f"{key!r} must be a floating tensor of shape [K], got {episode_cost!r}"
            )
        if episode_cost.ndim != 1 or episode_cost.shape[0] < 1:
            raise ValueError(f"{key!r} must have shape [K], got {tuple(episode_cost.shape)}")
        size = 1 + episode_cost.shape[0]
        if (
            not isinstance(gram, (list, tuple))
            or len(gram) != size
            or any(not isinstance(row, (list, tuple)) or len(row) != size for row in gram)
        ):
            raise ValueError(
                f"gram must be a {size} x {size} nested list (1 + K directions for the K = "
                f"{size - 1} entries of {key!r}); build it with direction_gram(g_r, g_c)"
            )
        self._check_count(size - 1, "episode_cost")

    # ---------------------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self._settings().items())

    def _settings(self) -> dict[str, object]:
        """Settings shown by ``repr``; subclasses extend."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"
