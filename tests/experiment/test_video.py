"""Evaluation video: a GIF where MuJoCo can render, a clear message where it cannot."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import functools, sys, gymnasium, safe_envs
from gradmanip.experiment.evaluate import numpy_policy, record_gif
from gradmanip.rl.models import make_actor_critic
net = make_actor_critic(11, 3, seed=0).policy_net
path = record_gif(numpy_policy(net), functools.partial(gymnasium.make, "SafetyHopperVelocity-v1"),
                  sys.argv[1], max_steps=20)
print("written" if path else "none")
"""


def record(tmp_path, gl: str) -> tuple[str, str]:
    env = {**os.environ, "MUJOCO_GL": gl}
    path = tmp_path / f"{gl}.gif"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, str(path)


def test_gif_of_a_deterministic_episode(tmp_path):
    from PIL import Image

    out, path = record(tmp_path, "egl")
    if "video skipped" in out:
        pytest.skip(f"no EGL rendering on this machine: {out.strip()}")
    assert out.strip().endswith("written")
    with Image.open(path) as gif:
        assert gif.n_frames >= 5 and gif.size[0] > 100


def test_unavailable_renderer_is_explained_not_fatal(tmp_path, capsys):
    from gradmanip.experiment.evaluate import record_gif

    class NoDisplay:
        def reset(self, seed=None):
            return [0.0], {}

        def render(self):
            raise RuntimeError("an OpenGL platform library has not been loaded")

    def make(render_mode=None):
        return NoDisplay()

    assert record_gif(lambda obs: obs, make, tmp_path / "x.gif") is None
    out = capsys.readouterr().out
    assert "video skipped" in out and "OpenGL" in out and "MUJOCO_GL=egl" in out
    assert not (tmp_path / "x.gif").exists()
