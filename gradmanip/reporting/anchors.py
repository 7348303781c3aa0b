"""Published numbers to read the velocity results against, each with the budget it was reached at.

Sources (Safety-Gymnasium velocity tasks, v1, cost limit 25 per episode):

- OmniSafe's on-policy benchmark, 1e7 environment steps: the best constraint-satisfying algorithm
  per task and unconstrained PPO,
  https://github.com/PKU-Alignment/omnisafe/blob/main/benchmarks/on-policy/README.md
- OmniSafe's off-policy benchmark, 1e6 environment steps (Humanoid 3e6): SAC-Lag and unconstrained
  SAC, https://github.com/PKU-Alignment/omnisafe/blob/main/benchmarks/off-policy/README.md; its
  plotting tool reports off-policy runs by their deterministic test episodes (one per epoch,
  ``TestEpRet`` and ``TestEpCost``), to be read against the results' test columns.
- OmniSafe's PPO-Lag run for 300,000 steps (4,000 per epoch, seed 0) on a 2-core machine, to
  compare at this project's budget.
"""

from __future__ import annotations

from dataclasses import dataclass

ON_POLICY_URL = "https://github.com/PKU-Alignment/omnisafe/blob/main/benchmarks/on-policy/README.md"
OFF_POLICY_URL = (
    "https://github.com/PKU-Alignment/omnisafe/blob/main/benchmarks/off-policy/README.md"
)


@dataclass(frozen=True)
class Anchor:
    """A reward (and cost; ``None`` for an unconstrained algorithm) reached after ``steps``."""

    task: str
    source: str
    algorithm: str
    steps: int
    reward: float
    cost: float | None
    url: str | None = None


def _task(name: str) -> str:
    return f"Safety{name}Velocity-v1"


_ON_POLICY_SAFE = {
    "Ant": ("PPOLag", 3262, 12.1),
    "HalfCheetah": ("FOCOPS", 2965, 2.4),
    "Hopper": ("CUP", 1716, 7.5),
    "Humanoid": ("PPOLag", 6624, 5.9),
    "Swimmer": ("CPPOPID", 91, 19.1),
    "Walker2d": ("TRPOLag", 3207, 15.0),
}
_ON_POLICY_PPO = {
    "Ant": 5978,
    "HalfCheetah": 6922,
    "Hopper": 2337,
    "Humanoid": 9116,
    "Swimmer": 120,
    "Walker2d": 6240,
}
_OFF_POLICY_SACLAG = {
    "Ant": (1897, 5.7),
    "HalfCheetah": (2834, 0.0),
    "Hopper": (963, 20.2),
    "Humanoid": (5940, 17.6),
    "Swimmer": (11, 22.7),
    "Walker2d": (2676, 30.7),
}
_OFF_POLICY_SAC = {
    "Ant": 5456,
    "HalfCheetah": 11489,
    "Hopper": 3538,
    "Walker2d": 4419,
    "Swimmer": 46,
}


def _off_policy_steps(name: str) -> int:
    return 3_000_000 if name == "Humanoid" else 1_000_000


ANCHORS: tuple[Anchor, ...] = (
    *(
        Anchor(_task(n), "OmniSafe on-policy, best safe", a, 10_000_000, r, c, ON_POLICY_URL)
        for n, (a, r, c) in _ON_POLICY_SAFE.items()
    ),
    *(
        Anchor(
            _task(n), "OmniSafe on-policy, unconstrained", "PPO", 10_000_000, r, None, ON_POLICY_URL
        )
        for n, r in _ON_POLICY_PPO.items()
    ),
    *(
        Anchor(
            _task(n),
            "OmniSafe off-policy, test episodes",
            "SACLag",
            _off_policy_steps(n),
            r,
            c,
            OFF_POLICY_URL,
        )
        for n, (r, c) in _OFF_POLICY_SACLAG.items()
    ),
    *(
        Anchor(
            _task(n),
            "OmniSafe off-policy, unconstrained, test episodes",
            "SAC",
            1_000_000,
            r,
            None,
            OFF_POLICY_URL,
        )
        for n, r in _OFF_POLICY_SAC.items()
    ),
    Anchor(
        _task("Hopper"),
        "OmniSafe, seed 0, 4,000 steps per epoch, 2-core machine",
        "PPOLag",
        300_000,
        1078,
        55.6,
    ),
)
"""Every anchor; :func:`anchors_for` selects a task's."""


def anchors_for(task: str) -> list[Anchor]:
    """The anchors of ``task`` (none for a task without published numbers)."""
    return [a for a in ANCHORS if a.task == task]
