"""The shared property suite of the strategies, importable to check your own strategy.

>>> from gradmanip.strategies import make_strategy
>>> from gradmanip.strategies.testing import check_strategy
>>> check_strategy(make_strategy("soft_switch", cost_limit=1.0, upper_slack=0.5))

:func:`check_strategy` raises ``AssertionError`` describing the first violated property. It uses
only torch and tensordict (random cases from a seeded generator), so it runs anywhere; every
property also exists as its own ``check_*`` function.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictSequential
from torch import Tensor

from gradmanip.strategies.base import Strategy
from gradmanip.strategies.diagnostics import as_tensors
from gradmanip.strategies.gram import combine, direction_gram

# Scales of the random directions: zero, tiny, ordinary and huge (all finite in float32).
SCALES = (0.0, 1e-30, 1e-3, 1.0, 1e3, 1e30)

Case = tuple[Tensor, Tensor, Tensor]


def constraint_count(strategy: Strategy, default: int = 2) -> int:
    """K to test with: the strategy's fixed count, else ``default``."""
    return strategy.num_constraints or default


def random_cases(
    strategy: Strategy,
    num_params: int = 6,
    num_cases: int = 12,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Iterator[Case]:
    """Random (g_r [P], g_c [K, P], episode_cost [K]) over :data:`SCALES`, costs around the limit.

    Costs are drawn around the strategy's ``cost_limit`` buffer when it has one (else around 25),
    so every switching mode is visited.
    """
    generator = torch.Generator().manual_seed(seed)
    count = constraint_count(strategy)
    limit = getattr(strategy, "cost_limit", torch.tensor([25.0]))
    limit = torch.as_tensor(limit, dtype=torch.float64).expand(count)
    for index in range(num_cases):
        scale = SCALES[index % len(SCALES)]
        g_r = torch.randn(num_params, generator=generator, dtype=torch.float64) * scale
        g_c = torch.randn(count, num_params, generator=generator, dtype=torch.float64) * scale
        spread = 1.0 + limit.abs()
        offset = (torch.rand(count, generator=generator, dtype=torch.float64) * 2 - 1) * spread
        yield g_r.to(dtype), g_c.to(dtype), (limit + offset).to(dtype)


def _as_td(case: Case, strategy: Strategy) -> TensorDict:
    keys = strategy.keys
    td = TensorDict({}, batch_size=[])
    for field, value in zip(
        ("reward_direction", "cost_direction", "episode_cost"), case, strict=True
    ):
        td.set(keys[field], value)
    return td


def check_output(strategy: Strategy, cases: list[Case]) -> None:
    """Update has shape [P], the input dtype, finite values; diagnostics are tensors."""
    for g_r, g_c, cost in cases:
        update, diagnostics = strategy.aggregate(g_r, g_c, cost)
        assert update.shape == g_r.shape, (
            f"update shape {tuple(update.shape)} != {tuple(g_r.shape)}"
        )
        assert update.dtype == g_r.dtype, f"update dtype {update.dtype} != {g_r.dtype}"
        assert torch.isfinite(update).all(), f"non-finite update for finite inputs: {update}"
        for name, value in diagnostics.items():
            assert isinstance(value, Tensor), f"diagnostic {name!r} is not a tensor"


def check_forward_matches_aggregate(strategy: Strategy, cases: list[Case]) -> None:
    """``forward`` writes the same update as ``aggregate`` and every declared out key."""
    for case in cases:
        expected, _ = copy.deepcopy(strategy).aggregate(*case)
        td = copy.deepcopy(strategy)(_as_td(case, strategy))
        for key in strategy.out_keys:
            assert key in td.keys(True, True), f"forward did not write declared out key {key!r}"
        torch.testing.assert_close(td.get(strategy.keys["update"]), expected, rtol=0, atol=0)


def check_coefficients_match_aggregate(strategy: Strategy, cases: list[Case]) -> None:
    """Linear strategies: the coefficients computed from the Gram matrix alone give the update
    of ``aggregate`` (as the driver's fast path uses them) with the same diagnostics."""
    if not strategy.is_linear:
        return
    for case in cases:
        expected, expected_diagnostics = copy.deepcopy(strategy).aggregate(*case)
        g_r, g_c, episode_cost = case
        coefficients, diagnostics = copy.deepcopy(strategy).coefficients(
            direction_gram(g_r, g_c), episode_cost
        )
        assert len(coefficients) == 1 + g_c.shape[0], "one coefficient per direction expected"
        torch.testing.assert_close(combine(g_r, g_c, coefficients), expected)
        assert diagnostics.keys() == expected_diagnostics.keys(), "diagnostics differ"
        for name, value in as_tensors(diagnostics, g_r.device).items():
            torch.testing.assert_close(
                value, expected_diagnostics[name], msg=f"diagnostic {name!r}"
            )


def check_positive_homogeneity(strategy: Strategy, cases: list[Case]) -> None:
    """aggregate(s g_r, s g_c) == s aggregate(g_r, g_c) for s > 0; zero directions -> zero.

    Every evaluation runs on a copy of the same state (random strategies stay comparable).
    """
    for g_r, g_c, cost in cases:
        base, _ = copy.deepcopy(strategy).aggregate(g_r, g_c, cost)
        for scale in (1e-3, 7.0):
            scaled, _ = copy.deepcopy(strategy).aggregate(g_r * scale, g_c * scale, cost)
            reference = base * scale
            tolerance = 1e-4 * float(reference.abs().max().clamp_min(1e-30))
            torch.testing.assert_close(scaled, reference, rtol=1e-4, atol=tolerance)
        zero, _ = strategy.aggregate(torch.zeros_like(g_r), torch.zeros_like(g_c), cost)
        assert (zero == 0).all(), f"zero directions gave a non-zero update {zero}"


def _outputs(strategy: Strategy, cases: list[Case], epochs: int = 3) -> list[Tensor]:
    outputs = []
    for epoch in range(epochs):
        for g_r, g_c, cost in cases:
            update, diagnostics = strategy.aggregate(g_r, g_c, cost)
            outputs.append(update)
            outputs.extend(diagnostics.values())
        strategy.update_state(cases[epoch % len(cases)][2])
    return outputs


def _assert_same(first: list[Tensor], second: list[Tensor], what: str) -> None:
    assert len(first) == len(second), f"{what}: different number of outputs"
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b), f"{what}: outputs differ ({a} vs {b})"


def check_state_dict_round_trip(strategy: Strategy, cases: list[Case]) -> None:
    """Loading a state_dict into a fresh copy gives identical subsequent behaviour."""
    fresh = copy.deepcopy(strategy)
    _outputs(strategy, cases)  # advance the state
    restored = copy.deepcopy(fresh)
    restored.load_state_dict(copy.deepcopy(strategy.state_dict()))
    _assert_same(_outputs(strategy, cases), _outputs(restored, cases), "state_dict round trip")


def check_reset(strategy: Strategy, cases: list[Case]) -> None:
    """After ``reset()`` the strategy behaves like a pristine copy."""
    pristine = copy.deepcopy(strategy)
    pristine.reset()
    _outputs(strategy, cases)
    strategy.reset()
    _assert_same(_outputs(strategy, cases), _outputs(pristine, cases), "reset")


def check_renamed_keys(strategy: Strategy, cases: list[Case]) -> None:
    """Renamed keys read/write the renamed entries, also inside a ``TensorDictSequential``."""
    renamed = copy.deepcopy(strategy).set_keys(
        reward_direction=("in", "g_r"),
        cost_direction=("in", "g_c"),
        episode_cost="jc",
        update=("out", "step"),
        diagnostics=("out", "diag"),
    )
    for case in cases:
        expected, _ = copy.deepcopy(strategy).aggregate(*case)
        for module in (copy.deepcopy(renamed), TensorDictSequential(copy.deepcopy(renamed))):
            td = module(_as_td(case, renamed))
            torch.testing.assert_close(td.get(("out", "step")), expected, rtol=0, atol=0)
            assert "update" not in td, "renamed strategy still wrote 'update'"


def check_bad_inputs(strategy: Strategy, case: Case) -> None:
    """Missing key -> KeyError naming it; wrong shapes/dtypes -> ValueError naming the key."""
    g_r, g_c, cost = case
    other_dtype = torch.float32 if g_r.dtype == torch.float64 else torch.float64
    for field in ("reward_direction", "cost_direction", "episode_cost"):
        td = _as_td(case, strategy)
        del td[strategy.keys[field]]
        try:
            strategy(td)
        except KeyError as error:
            assert str(strategy.keys[field]) in str(error), f"KeyError does not name {field}"
        else:
            raise AssertionError(f"missing {field!r} did not raise KeyError")
    bad: list[tuple[str, Callable[[], object]]] = [
        ("cost_direction", lambda: strategy.aggregate(g_r, g_c[:, :-1], cost)),
        ("reward_direction", lambda: strategy.aggregate(g_r.unsqueeze(0), g_c, cost)),
        ("cost_direction", lambda: strategy.aggregate(g_r, g_c[0], cost)),
        ("cost_direction", lambda: strategy.aggregate(g_r, g_c.to(other_dtype), cost)),
        ("episode_cost", lambda: strategy.aggregate(g_r, g_c, cost[:1].expand(2, 1))),
        ("reward_direction", lambda: strategy.aggregate(g_r.long(), g_c, cost)),
    ]
    for field, call in bad:
        try:
            call()
        except ValueError as error:
            assert str(strategy.keys[field]) in str(error), f"ValueError does not name {field}"
        else:
            raise AssertionError(f"bad {field!r} did not raise ValueError")


def check_strategy(
    strategy: Strategy,
    *,
    homogeneous: bool | None = None,
    num_params: int = 6,
    seed: int = 0,
) -> None:
    """Run the whole property suite on ``strategy`` (raises AssertionError on failure).

    ``homogeneous=False`` skips the positive-homogeneity property for strategies whose update is
    not a scale-equivariant function of the directions; the default (None) reads the strategy's
    ``positively_homogeneous`` attribute (False for the trust-region rules CPO and PCPO).
    """
    cases = list(random_cases(strategy, num_params=num_params, seed=seed))
    subject = copy.deepcopy(strategy)
    check_output(subject, cases)
    check_forward_matches_aggregate(copy.deepcopy(strategy), cases)
    check_coefficients_match_aggregate(strategy, cases)
    if homogeneous is None:
        homogeneous = strategy.positively_homogeneous
    if homogeneous:
        check_positive_homogeneity(copy.deepcopy(strategy), cases)
    check_state_dict_round_trip(copy.deepcopy(strategy), cases)
    check_reset(copy.deepcopy(strategy), cases)
    check_renamed_keys(copy.deepcopy(strategy), cases)
    check_bad_inputs(copy.deepcopy(strategy), cases[3])
