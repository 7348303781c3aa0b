"""An episode's exact state, so that it can be written to a checkpoint and continued in a new
copy of the task bit for bit (the off-policy trainer's running episode).

It works on any Gymnasium environment of the two kinds below, not only on ``safe_envs``' tasks.

:func:`episode_state` reads it from a task environment in the middle of an episode;
:func:`restore_episode_state` writes it into another copy of the same task (after a ``reset``).
The state is the task's own plus the wrappers':

- a MuJoCo task: its whole ``MjData``, copied back with ``mj_copyData``. The integration state
  alone (``mj_getState``) continues the physics, but not the rewards of tasks that read
  quantities the last step computed before it integrated (Reacher's fingertip distance, Ant's
  and Humanoid's contact forces): those must be the same stale values;
- any other task that defines ``get_state()`` / ``set_state(state)`` (``safe_envs``' toy tasks);
- the environment's random generator (``np_random``), which draws the next reset's noise;
- the step count of Gymnasium's ``TimeLimit``.

Tasks of neither kind have no readable state: :func:`episode_state` returns ``None``.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import gymnasium


def _layers(env: gymnasium.Env) -> list[Any]:
    layers = [env]
    while hasattr(layers[-1], "env"):
        layers.append(layers[-1].env)
    return layers


def _mujoco(base: Any) -> tuple[Any, Any, Any] | None:
    """``(mujoco, model, data)`` of a MuJoCo task, else ``None``."""
    model, data = getattr(base, "model", None), getattr(base, "data", None)
    if model is None or data is None or type(data).__module__.split(".")[0] != "mujoco":
        return None
    import mujoco

    return mujoco, model, data


def _sizes(model: Any) -> tuple[int, ...]:
    """The sizes that lay out an ``MjData`` (a copy between different ones would be wrong)."""
    names = ("nq", "nv", "na", "nu", "nbody", "njnt", "ngeom", "nsite", "nmocap", "nuserdata")
    return tuple(int(getattr(model, name)) for name in names)


def has_episode_state(env: gymnasium.Env) -> bool:
    """Whether :func:`episode_state` can read ``env``'s running episode."""
    base = env.unwrapped
    return _mujoco(base) is not None or callable(getattr(base, "get_state", None))


def episode_state(env: gymnasium.Env) -> dict[str, Any] | None:
    """The state that continues ``env``'s running episode exactly, or ``None`` when the task
    has no readable state (see the module docstring)."""
    base = env.unwrapped
    sim = _mujoco(base)
    if sim is not None:
        task = {"mujoco": pickle.dumps(sim[2])}
    elif callable(getattr(base, "get_state", None)):
        task = {"task": base.get_state()}
    else:
        return None
    steps = [getattr(layer, "_elapsed_steps", None) for layer in _layers(env)]
    return task | {
        "np_random": copy.deepcopy(base.np_random.bit_generator.state),
        "elapsed_steps": steps,
    }


def restore_episode_state(env: gymnasium.Env, state: dict[str, Any]) -> None:
    """Continue the episode of :func:`episode_state` in ``env``, a copy of the same task that
    has been reset."""
    base = env.unwrapped
    if "mujoco" in state:
        sim = _mujoco(base)
        if sim is None:
            raise ValueError(f"the state is a MuJoCo task's, but {base!r} is not a MuJoCo task")
        mujoco, model, data = sim
        saved = pickle.loads(state["mujoco"])
        if _sizes(saved.model) != _sizes(model):
            raise ValueError(f"the state is another MuJoCo model's than {base!r}'s")
        mujoco.mj_copyData(data, model, saved)
    else:
        base.set_state(state["task"])
    base.np_random.bit_generator.state = copy.deepcopy(state["np_random"])
    layers = _layers(env)
    if len(layers) != len(state["elapsed_steps"]):
        raise ValueError(
            f"the state has {len(state['elapsed_steps'])} wrapper layers, {env} has {len(layers)}"
        )
    for layer, steps in zip(layers, state["elapsed_steps"], strict=True):
        if steps is not None:
            layer._elapsed_steps = steps
