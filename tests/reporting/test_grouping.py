"""Runs are grouped by everything but the seed; groups that share a strategy are labelled."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gradmanip.reporting import read_run_info, write_run_info
from gradmanip.reporting.compare import find_runs, summarise, to_markdown
from gradmanip.reporting.grouping import NOT_LEARNING_SETTINGS, group_runs, run_settings
from gradmanip.reporting.runs import load_runs

CONFIG_DIR = Path(__file__).resolve().parents[2] / "recipes" / "config"


def budget_runs(root, write_run, run_config, with_config=True):
    """One 300k-step run (seed 0) and three 100k-step runs (seeds 0, 1, 2), 50k-step epochs."""
    write_run(
        root / "long" / "seed0",
        [300.0] * 6,
        [10.0] * 6,
        steps_per_epoch=50_000,
        cfg=run_config(total_steps=300_000) if with_config else None,
    )
    for seed in range(3):
        write_run(
            root / "short" / f"seed{seed}",
            [float(seed)] * 2,
            [30.0] * 2,
            seed=seed,
            steps_per_epoch=50_000,
            cfg=run_config(seed=seed, total_steps=100_000) if with_config else None,
        )


@pytest.mark.parametrize("with_config", [True, False], ids=["config", "run.json fields"])
def test_different_budgets_are_different_groups(tmp_path, write_run, run_config, with_config):
    budget_runs(tmp_path, write_run, run_config, with_config)
    short, long = summarise(find_runs([tmp_path]))
    assert (long["settings"], long["seeds"], long["runs"]) == ("total_steps=300000", 1, 1)
    assert (short["settings"], short["seeds"], short["runs"]) == ("total_steps=100000", 3, 3)
    assert long["reward_mean"] == 300.0 and long["within_limit_share"] == 1.0
    assert short["reward_mean"] == pytest.approx(1.0) and short["within_limit_share"] == 0.0
    table = to_markdown([short, long])
    assert "| soft_switch (total_steps=300000) | 1 | 300.0 ± 0.0 |" in table
    assert "| soft_switch (total_steps=100000) | 3 |" in table


def test_seed_and_run_mechanics_do_not_split_a_group(tmp_path, write_run, run_config):
    mechanics = {"resume": True, "progress": False, "eval_episodes": 0, "num_workers": 2}
    mechanics["eval_every"] = 5  # a setting a run recorded before it existed lacks
    write_run(tmp_path / "a", [1.0], [1.0], seed=0, cfg=run_config(seed=0))
    write_run(tmp_path / "b", [2.0], [1.0], seed=1, cfg=run_config(seed=1, **mechanics))
    write_run(tmp_path / "c", [3.0], [1.0], seed=2, cfg=run_config(seed=2, total_steps=1e3))
    (group,) = group_runs(load_runs([tmp_path]))
    assert (group.seeds, group.label, group.name) == (3, "", "soft_switch")
    assert "algo.base.seed" not in group.settings and "logger.backends" not in group.settings
    assert group.settings["total_steps"] == 1000 and group.settings["hidden"] == [64, 64]


def test_groups_are_labelled_by_what_differs(tmp_path, write_run, run_config):
    wide = run_config(hidden=[256, 256])
    ten = [1.0] * 10  # ten 100-step epochs: the configuration's 1000 steps
    write_run(tmp_path / "a", ten, ten, cfg=run_config())
    write_run(tmp_path / "b", ten, ten, cfg=wide)
    write_run(tmp_path / "c", ten, ten)  # recorded before run.json held the config
    write_run(tmp_path / "d", ten, ten, strategy="lagrangian", cfg=run_config("lagrangian"))
    names = [g.name for g in group_runs(load_runs([tmp_path]))]
    assert names == [
        "lagrangian",
        "soft_switch (config not recorded)",
        "soft_switch (hidden=[256, 256])",
        "soft_switch (hidden=[64, 64])",
    ]


def test_settings_of_the_recipe_configuration():
    """Seeds and run mechanics of the real configuration leave the settings; the rest stays."""
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):

        def settings(*overrides):
            cfg = compose("ppo_softswitch", overrides=list(overrides))
            return run_settings({"config": OmegaConf.to_container(cfg, resolve=True)})

        base = settings("algo=trpo", "strategy=pcgrad")
        assert settings("algo=trpo", "strategy=pcgrad", "seed=7", "progress=false") == base
        assert settings("algo=trpo", "strategy=pcgrad", "total_steps=1e5") != base
    assert {"env.id", "env.cost_limit", "algo.base.max_kl", "total_steps"} <= set(base)
    assert not {k for k in base if k.split(".")[0] in NOT_LEARNING_SETTINGS}
    assert not {k for k in base if k.endswith("seed")}


def test_run_info_writes_omegaconf_values_as_json(tmp_path):
    limits = OmegaConf.create({"cost_limit": [25.0, 10.0]}).cost_limit
    write_run_info(tmp_path, {"cost_limit": limits, "config": {"slack": float("inf")}})
    info = read_run_info(tmp_path)
    assert info["cost_limit"] == [25.0, 10.0] and info["config"]["slack"] == float("inf")


def test_hydra_record_stands_in_for_a_missing_configuration(tmp_path, write_run, run_config):
    # Two runs whose run.json lacks the configuration; their .hydra/config.yaml tells them apart.
    for name, std in (("a", 0.0), ("b", -0.5)):
        path = write_run(tmp_path / name, [1.0, 2.0], [3.0, 4.0])
        (path / ".hydra").mkdir()
        cfg = run_config(init_log_std=std)
        cfg["algo"]["base"]["lr_schedule_updates"] = "${ceil_div:${total_steps},1}"
        OmegaConf.save(OmegaConf.create(cfg), path / ".hydra" / "config.yaml")
    groups = group_runs(load_runs([tmp_path]))
    assert sorted(g.label for g in groups) == ["init_log_std=-0.5", "init_log_std=0"]
    # interpolations are kept as written, not resolved
    assert groups[0].settings["algo.base.lr_schedule_updates"] == "${ceil_div:${total_steps},1}"
    # a configuration in run.json wins over the Hydra record
    write_run(tmp_path / "a", [1.0, 2.0], [3.0, 4.0], cfg=run_config(init_log_std=7.0))
    labels = sorted(g.label for g in group_runs(load_runs([tmp_path])))
    assert labels[1] == "init_log_std=7" and "init_log_std=-0.5" in labels[0]


def suite_dir(root: Path, revision: str | None) -> Path:
    """A suite's output directory, with its suite.json as the suite writes it."""
    root.mkdir(parents=True)
    record = {"suite": {"name": root.name}, "python": "3.11"}
    if revision is not None:
        record["revision"] = revision
    (root / "suite.json").write_text(json.dumps(record))
    return root


def test_a_suite_run_again_at_another_revision_forms_its_own_groups(
    tmp_path, write_run, run_config
):
    first = suite_dir(tmp_path / "v1", "3cac7debcbdf4a685c52288eb683b24bafb45411")
    second = suite_dir(tmp_path / "v2", "9626e3b0000000000000000000000000000000ff")
    for root, reward in ((first, 10.0), (second, 20.0)):
        for seed in (0, 1):
            path = root / "Task" / "ppo-soft_switch" / f"seed{seed}"
            write_run(path, [reward], [1.0], seed=seed, cfg=run_config(seed=seed))
    runs = load_runs([tmp_path])
    assert {run.revision for run in runs} == {
        "3cac7debcbdf4a685c52288eb683b24bafb45411",
        "9626e3b0000000000000000000000000000000ff",
    }
    groups = group_runs(runs)
    assert [(g.name, g.seeds) for g in groups] == [
        ("soft_switch (revision=3cac7de)", 2),
        ("soft_switch (revision=9626e3b)", 2),
    ]
    assert [run.info["seed"] for run in groups[1].runs] == [0, 1]
    assert {run.path.parts[-4] for run in groups[1].runs} == {"v2"}
    (alone,) = group_runs(load_runs([second]))  # one revision: no label
    assert (alone.name, alone.settings["revision"]) == ("soft_switch", "9626e3b")


def test_settings_added_at_a_later_revision_stay_out_of_the_label(tmp_path, write_run, run_config):
    first = suite_dir(tmp_path / "v1", "3cac7debcbdf4a685c52288eb683b24bafb45411")
    second = suite_dir(tmp_path / "v2", "9626e3b0000000000000000000000000000000ff")
    write_run(first / "a", [1.0], [1.0], cfg=run_config())
    write_run(second / "a", [1.0], [1.0], cfg=run_config(new_term="reward", total_steps=2000))
    labels = [g.label for g in group_runs(load_runs([tmp_path]))]
    # new_term exists at the later revision only; total_steps differs at both
    assert labels == ["revision=3cac7de, total_steps=1000", "revision=9626e3b, total_steps=2000"]
    # two groups of the later revision that differ only in the new setting keep it in the label
    write_run(second / "b", [1.0], [1.0], cfg=run_config(new_term="shared", total_steps=2000))
    labels = sorted(g.label for g in group_runs(load_runs([tmp_path])))
    assert labels == [
        "new_term=reward, revision=9626e3b, total_steps=2000",
        "new_term=shared, revision=9626e3b, total_steps=2000",
        "revision=3cac7de, total_steps=1000",
    ]
    # a new setting with different values at the later revision is shown even where the
    # labels would be told apart without it
    write_run(second / "b", [1.0], [1.0], cfg=run_config(new_term="shared", total_steps=3000))
    labels = sorted(g.label for g in group_runs(load_runs([tmp_path])))
    assert labels == [
        "new_term=reward, revision=9626e3b, total_steps=2000",
        "new_term=shared, revision=9626e3b, total_steps=3000",
        "revision=3cac7de, total_steps=1000",
    ]


def test_runs_outside_suites_have_no_revision(tmp_path, write_run, run_config):
    suite_dir(tmp_path / "no-revision", None)
    write_run(tmp_path / "no-revision" / "a", [1.0], [1.0], cfg=run_config())
    write_run(tmp_path / "plain" / "b", [1.0], [1.0], seed=1, cfg=run_config(seed=1))
    runs = load_runs([tmp_path])
    assert [run.revision for run in runs] == [None, None]
    (group,) = group_runs(runs)
    assert "revision" not in group.settings and group.seeds == 2
