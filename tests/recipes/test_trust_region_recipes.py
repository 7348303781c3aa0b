"""The trust-region strategies in the recipes: pairing check, OmniSafe preset, a tiny run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from gradmanip.experiment.config_checks import ConfigError
from gradmanip.reporting import read_metrics, read_run_info

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = ["env=SafetyPointVelocity-v0", "steps_per_epoch=500", "eval_episodes=1", "progress=false"]
sys.path.insert(0, str(RECIPES))
import ppo_softswitch  # noqa: E402


def compose_cfg(*overrides: str, tiny: bool = True):
    with initialize_config_dir(config_dir=str(RECIPES / "config"), version_base=None):
        return compose("ppo_softswitch", overrides=[*(TINY if tiny else []), *overrides])


@pytest.mark.parametrize("strategy", ["cpo", "pcpo"])
@pytest.mark.parametrize("extra", [[], ["safety_start_epoch=3"]])
def test_ppo_base_is_refused_before_training(tmp_path, strategy, extra) -> None:
    cfg = compose_cfg("algo=ppo", f"strategy={strategy}", *extra)
    with pytest.raises(ConfigError, match=rf"strategy={strategy} .* set algo=trpo"):
        ppo_softswitch.train(cfg, tmp_path)
    assert not (tmp_path / "metrics.csv").exists()


def test_cpo_refuses_several_constraints_before_training(tmp_path) -> None:
    cfg = compose_cfg("algo=trpo", "strategy=cpo", "strategy.cost_limit=[10.0,5.0]")
    with pytest.raises(ConfigError, match="strategy: CPO solves for one constraint.*pcpo"):
        ppo_softswitch.train(cfg, tmp_path)


def test_omnisafe_preset_has_the_peer_settings() -> None:
    cfg = compose_cfg("algo=trpo_omnisafe", "strategy=cpo", tiny=False)
    base = cfg.algo.base
    assert cfg.algo.name == "trpo" and cfg.steps_per_epoch == 20_000
    assert (base.max_kl, base.cg_iters, base.damping) == (0.01, 15, 0.1)
    assert (base.critic_epochs, base.critic_batch_size) == (10, 128)
    assert (base.critic_lr, base.critic_l2) == (1e-3, 1e-3)


@pytest.mark.parametrize("strategy", ["cpo", "pcpo", "upgrad", "cagrad"])
def test_natural_base_trains_with_the_rule(tmp_path, strategy) -> None:
    cfg = compose_cfg("algo=trpo", f"strategy={strategy}", "total_steps=1000")
    ppo_softswitch.train(cfg, tmp_path)
    rows = read_metrics(tmp_path)
    assert len(rows) == 2 and all(row["step_accepted"] in (0.0, 1.0) for row in rows)
    trust_region = strategy in ("cpo", "pcpo")  # the line search reports its multiplier
    assert ("strategy/cost_multiplier" in rows[0]) == trust_region
    assert read_run_info(tmp_path)["strategy"] == strategy
