"""Make ``gymnasium.make`` list the ``safe_envs`` ids when a task-like id is unknown.

Gymnasium reports an unknown id with at most one close match. After ``import safe_envs``, an
unknown id whose name starts with ``"Safe"`` or resembles a registered task name gets the same
Gymnasium error type with the list of available ``safe_envs`` ids appended. Nothing else about
Gymnasium's lookup changes.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable

from gymnasium import error
from gymnasium.envs import registration

from safe_envs.registry import available_ids

_MARK = "_safe_envs_lists_ids"


def _looks_like_ours(name: str) -> bool:
    names = [env_id.rsplit("-v", 1)[0] for env_id in available_ids()]
    return name.startswith("Safe") or bool(difflib.get_close_matches(name, names, n=1))


def _with_id_list(check: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(check)
    def checked(ns: str | None, name: str, version: int | None) -> None:
        try:
            check(ns, name, version)
        except (error.NameNotFound, error.VersionNotFound, error.DeprecatedEnv) as err:
            if ns is not None or not _looks_like_ours(name):
                raise
            raise type(err)(
                f"{err} Available safe_envs ids: {', '.join(available_ids())}."
            ) from None

    setattr(checked, _MARK, True)
    return checked


def install() -> None:
    """Augment Gymnasium's unknown-id errors once (idempotent)."""
    current = registration._check_version_exists
    if not getattr(current, _MARK, False):
        registration._check_version_exists = _with_id_list(current)
