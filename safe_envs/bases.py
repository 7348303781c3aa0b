"""Construct Gymnasium's MuJoCo base environments without their registry wrappers.

The tasks use Gymnasium's ``*-v4`` models so that results compare with published tables
(Safety-Gymnasium / OmniSafe velocity tasks, the PCRPO Safety-MuJoCo benchmark). Looking up
``"Hopper-v4"`` through ``gymnasium.make`` warns that v4 is out of date; the base class is
built from the registry entry instead, under a scoped filter for Gymnasium's deprecation
warnings, so our ids stay silent while Gymnasium's own ids keep their warning.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium
from gymnasium.envs.registration import load_env_creator, registry

from safe_envs.validation import check_choice

BASE_VERSIONS: tuple[str, ...] = ("v4", "v5")


def make_base(name: str, version: str = "v4", **kwargs: Any) -> gymnasium.Env:
    """Unwrapped Gymnasium MuJoCo env ``f"{name}-{version}"`` built with ``kwargs``."""
    check_choice("base_version", version, BASE_VERSIONS)
    base_id = f"{name}-{version}"
    if base_id not in registry:
        raise ValueError(f"base_version {version!r} does not exist for base {name!r}.")
    spec = registry[base_id]
    creator = load_env_creator(spec.entry_point)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"gymnasium\..*")
        return creator(**{**spec.kwargs, **kwargs})
