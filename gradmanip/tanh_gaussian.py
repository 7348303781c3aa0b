"""A tanh-Gaussian actor's draws on plain tensors, for the hot paths of an off-policy learner.

Calling a TorchRL :class:`~torchrl.modules.ProbabilisticActor` routes every draw through its
TensorDict module layers (key lookups, output writing, a log-probability the caller may not
need). :class:`TanhGaussianSampler` calls the same network and builds the same distribution
directly, so a draw consumes the same random numbers and gives the same action and
log-probability, bit for bit, as ``actor(td)`` under ``ExplorationType.RANDOM`` (tests:
``tests/test_tanh_gaussian.py``; speed: ``benchmarks/test_bench_sac.py``).
"""

from __future__ import annotations

import torch
from tensordict.nn import (
    ProbabilisticTensorDictModule,
    TensorDictModule,
    TensorDictSequential,
)
from torch import Tensor, nn
from torch.distributions import Distribution
from torchrl.modules import ProbabilisticActor
from torchrl.modules.distributions.utils import rsample_and_log_prob


class TanhGaussianSampler:
    """Draws of ``actor``'s distribution from an observation tensor.

    ``actor`` is a probabilistic actor of two layers, a network ``observation -> (loc, scale)``
    and the distribution over them (as :func:`gradmanip.rl.sac_models.make_sac_networks` builds
    it). The sampler holds the actor's own network, so it sees every change of its parameters.
    """

    def __init__(self, actor: ProbabilisticActor) -> None:
        layers = list(getattr(actor, "module", ()))
        if (
            len(layers) != 2
            or not isinstance(layers[0], TensorDictModule)
            or isinstance(layers[0], TensorDictSequential)
            or not isinstance(layers[1], ProbabilisticTensorDictModule)
        ):
            raise TypeError(
                "actor must be a ProbabilisticActor of two layers, a TensorDictModule network "
                "and its distribution (see gradmanip.rl.sac_models.make_sac_networks)"
            )
        body, head = layers
        if list(body.out_keys) != list(head.in_keys) or len(body.in_keys) != 1:
            raise ValueError(
                f"the actor's network must read one key and write the distribution's inputs "
                f"{list(head.in_keys)}, got {list(body.in_keys)} -> {list(body.out_keys)}"
            )
        if (
            getattr(head, "num_samples", None) is not None
            or getattr(head, "safe", False)
            or getattr(head, "_generator", None) is not None
            or getattr(head, "_generator_key", None) is not None
        ):
            raise ValueError(
                "an actor drawing several samples per input, projecting its draws onto its spec "
                "(safe=True) or drawing from a generator of its own is not supported"
            )
        self.observation_key = body.in_keys[0]
        self.net: nn.Module = body.module
        self.dist_keys = [key[-1] if isinstance(key, tuple) else key for key in head.dist_keys]
        self.distribution_class = head.distribution_class
        self.distribution_kwargs = dict(head.distribution_kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(observation_key={self.observation_key!r}, "
            f"distribution={self.distribution_class.__name__})"
        )

    def distribution(self, observation: Tensor) -> Distribution:
        """The actor's distribution at ``observation``."""
        out = self.net(observation)
        params = dict(zip(self.dist_keys, (out,) if isinstance(out, Tensor) else out, strict=True))
        return self.distribution_class(**params, **self.distribution_kwargs)

    def rsample(self, observation: Tensor) -> tuple[Tensor, Tensor]:
        """A reparameterised action and its log-probability (differentiable)."""
        return rsample_and_log_prob(self.distribution(observation))

    @torch.no_grad()
    def act(self, observation: Tensor) -> Tensor:
        """An exploring action: the draw ``actor(td)`` makes, without its log-probability."""
        return self.rsample(observation)[0]


def sampler_or_none(actor: nn.Module) -> TanhGaussianSampler | None:
    """A :class:`TanhGaussianSampler` of ``actor``, or ``None`` for an actor of another layout
    (its callers then draw through the actor itself)."""
    try:
        return TanhGaussianSampler(actor)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
