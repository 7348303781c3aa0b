"""The results page: each figure against hand-computed values, K = 2, figures, the command."""

import json

import matplotlib.figure
import pytest
from matplotlib.colors import to_rgb

from gradmanip.reporting.compare import main
from gradmanip.reporting.group_results import group_result
from gradmanip.reporting.grouping import group_runs
from gradmanip.reporting.page_block import BEGIN, END
from gradmanip.reporting.results_figures import plot_tasks
from gradmanip.reporting.results_markdown import fmt_reach, fmt_steps, results_table
from gradmanip.reporting.run_metrics import eval_costs, final_mean, run_figures
from gradmanip.reporting.runs import load_run, load_runs
from tests.png_image import png_size

TASK = "SafetyHopperVelocity-v1"

# Ten epochs of 10k steps, cost limit 25. Within the limit: epochs 3, 5, 6, 7, 9, 10.
METRICS = """\
epoch,env_steps,episode_return,episode_cost
1,10000,10,30
2,20000,20,30
3,30000,30,20
4,40000,40,30
5,50000,50,20
6,60000,60,20
7,70000,70,10
8,80000,80,30
9,90000,90,20
10,100000,100,20
"""


def hand_written_run(path, write_run, summary=None):
    write_run(path, [0.0], [0.0], steps_per_epoch=10_000, summary=summary)
    (path / "metrics.csv").write_text(METRICS)
    info = json.loads((path / "run.json").read_text())
    (path / "run.json").write_text(json.dumps(info | {"total_steps": 100_000}))
    return path


def test_figures_of_one_run_by_hand(tmp_path, write_run):
    run = load_run(hand_written_run(tmp_path, write_run, {"eval/return": 95, "eval/cost": 12}))
    whole = run_figures(run, reference=100.0)
    assert (whole.reward, whole.costs) == (100.0, [20.0])  # last 10%: the last epoch
    assert whole.within == 6 / 8  # epochs 3-10 (after the first 20%): all but 4 and 8
    assert whole.reach == {0.5: 50_000, 0.8: 90_000}  # epoch 8 reaches 80 at cost 30
    assert (whole.eval_reward, whole.eval_costs) == (95.0, [12.0])
    cut = run_figures(run, reference=60.0, cut=60_000)  # epochs 1-6
    assert (cut.reward, cut.costs) == (60.0, [20.0])
    assert cut.within == 3 / 5  # epochs 2-6 (after the first one of six)
    assert cut.reach == {0.5: 30_000, 0.8: 50_000}  # 30 at epoch 3, 48 first passed at 5
    assert (cut.eval_reward, cut.eval_costs) == (None, [])  # no evaluation at the cut
    assert run_figures(run, reference=None).reach == {}


# Six epochs; deterministic evaluations during training at epochs 2, 4, 5 and 6 (K = 2). In
# epoch 5 no episode finished, yet its evaluation counts; epoch 6's lacks constraint 1's cost.
EVALUATED = """\
epoch,env_steps,episode_return,episode_cost,episode_cost_0,episode_cost_1,eval/return,eval/cost,eval/cost_0,eval/cost_1
1,10000,10,3,2,1,,,,
2,20000,20,3,2,1,200,30,20,10
3,30000,30,3,2,1,,,,
4,40000,40,3,2,1,400,50,40,10
5,50000,,,,,500,70,40,30
6,60000,60,3,2,1,600,,60,
"""


def test_test_figures_from_the_evaluations_made_during_training(tmp_path, write_run):
    write_run(tmp_path, [0.0], [(0.0, 0.0)], limit=[25.0, 10.0], steps_per_epoch=10_000)
    (tmp_path / "metrics.csv").write_text(EVALUATED)
    run = load_run(tmp_path)
    assert [r["epoch"] for r in run.evaluations] == [2, 4, 5, 6]
    last = run_figures(run, reference=None)  # the last 10% of 4 evaluations: epoch 6's
    assert (last.test_reward, last.test_costs) == (600.0, [60.0, None])
    half = run_figures(run, reference=None, fraction=0.5)  # epochs 5 and 6
    assert (half.test_reward, half.test_costs) == (550.0, [50.0, None])
    cut = run_figures(run, reference=None, cut=50_000, fraction=0.5)  # epochs 4 and 5
    assert (cut.test_reward, cut.test_costs) == (450.0, [40.0, 20.0])
    assert (cut.reward, cut.costs) == (35.0, [2.0, 1.0])  # epoch 5 finished no episode
    table = results_table([group_result(group_runs([run])[0], [])])
    assert "| test reward | test cost | eval reward |" in table
    assert "| 600 | 60.0 / — | — | — |" in table  # no final evaluation (unfinished)


def test_runs_without_evaluations_during_training_have_no_test_columns(tmp_path, write_run):
    run = load_run(hand_written_run(tmp_path, write_run, {"eval/return": 95, "eval/cost": 12}))
    assert run.evaluations == [] and run_figures(run, None).test_reward is None
    assert "test" not in results_table([group_result(group_runs([run])[0], [])])


def test_last_tenth_counts_whole_epochs():
    assert final_mean(list(range(30))) == 28.0  # 3 epochs, not 4 (30 x 0.1 in floats)
    assert final_mean([1.0, 2.0, 3.0, 4.0, 5.0]) == 5.0  # at least one
    assert final_mean(list(range(20)), fraction=0.2) == 17.5


def group_of_two_and_reference(root, write_run):
    """soft_switch: the hand-written run (seed 0, finished) and a run always above the limit
    (seed 1, unfinished); reward_only: one run whose final reward, 100, is the reference."""
    hand_written_run(root / "soft" / "seed0", write_run, {"eval/return": 95, "eval/cost": 12})
    returns = [10.0 * e for e in range(1, 11)]
    write_run(root / "soft" / "seed1", returns, [30.0] * 10, seed=1, steps_per_epoch=10_000)
    write_run(
        root / "free" / "seed0",
        returns,
        [100.0] * 10,
        strategy="reward_only",
        steps_per_epoch=10_000,
        summary={"eval/return": 120, "eval/cost": 90},
    )


def test_group_table_over_seeds(tmp_path, write_run):
    group_of_two_and_reference(tmp_path, write_run)
    groups = group_runs(load_runs([tmp_path]))
    soft = next(g for g in groups if g.strategy == "soft_switch")
    whole = group_result(soft, groups)
    assert whole.reference_reward == 100.0 and whole.unfinished == 1
    table = results_table([whole])
    assert "| strategy | steps | seeds | reward | cost (limit 25) | epochs within limit |" in table
    assert (
        "| soft_switch | 100k | 2 (1 unfinished) | 100 ± 0 | 25.0 ± 5.0 | 38 ± 38% "
        "| 95.0 (1/2) | 12.0 (1/2) | 50k (1/2) | 90k (1/2) |"
    ) in table
    cut = group_result(soft, groups, cut=60_000)
    assert cut.reference_reward == 60.0  # the reference stopped at the cut too
    assert (
        "| soft_switch | 2 (1 unfinished) | 60.0 ± 0.0 | 25.0 ± 5.0 | 30 ± 30% "
        "| 30k (1/2) | 50k (1/2) |"
    ) in results_table([cut], evaluated=False)


def test_reference_must_share_the_budget(tmp_path, write_run):
    write_run(tmp_path / "a", [1.0] * 4, [1.0] * 4)
    write_run(tmp_path / "b", [9.0] * 8, [9.0] * 8, strategy="reward_only")  # twice as long
    groups = group_runs(load_runs([tmp_path]))
    soft = next(g for g in groups if g.strategy == "soft_switch")
    result = group_result(soft, groups)
    assert result.reference is None and result.figures[0].reach == {}
    assert results_table([result]).rstrip().endswith("| n/a | n/a |")


def test_cells_of_steps():
    assert fmt_steps(180_000) == "180k" and fmt_steps(10_000_000) == "10M"
    assert fmt_reach([170_000, 190_000, 180_000]) == "180k (3/3)"
    assert fmt_reach([None, None]) == "—" and fmt_reach(None) == "n/a"


def two_constraint_runs(root, write_run):
    costs = [(20.0, 5.0), (20.0, 15.0), (30.0, 5.0), (20.0, 5.0), (20.0, 8.0)]
    write_run(
        root / "soft",
        [10.0, 20.0, 30.0, 40.0, 50.0],
        costs,
        limit=[25.0, 10.0],
        steps_per_epoch=10_000,
        summary={"eval/return": 40, "eval/cost": 7, "eval/cost_0": 3, "eval/cost_1": 4},
    )
    write_run(
        root / "free",
        [100.0] * 5,
        [(90.0, 90.0)] * 5,
        strategy="reward_only",
        limit=[25.0, 10.0],
        steps_per_epoch=10_000,
    )


def test_two_constraints_each_against_its_own_limit(tmp_path, write_run):
    two_constraint_runs(tmp_path, write_run)
    groups = group_runs(load_runs([tmp_path]))
    soft = next(g for g in groups if g.strategy == "soft_switch")
    (figures,) = group_result(soft, groups).figures
    assert figures.costs == [20.0, 8.0]
    assert figures.within == 2 / 4  # epoch 2 breaks limit 10, epoch 3 limit 25
    assert figures.reach == {0.5: 50_000, 0.8: None}
    assert figures.eval_costs == [3.0, 4.0]
    table = results_table([group_result(soft, groups)])
    assert "| cost (limit 25 / 10) |" in table
    assert "| 50.0 | 20.0 / 8.00 | 50% | 40.0 | 3.00 / 4.00 | 50k (1/1) | — |" in table
    # with K > 1, eval/cost is the total: alone it gives none of the constraints' costs
    assert eval_costs({"eval/cost": 7}, 2) == [None, None]
    assert eval_costs({"eval/cost": 7, "eval/cost_0": 3, "eval/cost_1": 4}, 2) == [3.0, 4.0]
    assert eval_costs({"eval/cost": 7}, 1) == [7.0]


@pytest.fixture(name="saved_figures")
def saved_figures_fixture(monkeypatch):
    """The figures ``savefig`` writes, in order (the files are still written)."""
    figures = []
    save = matplotlib.figure.Figure.savefig

    def record(fig, *args, **kwargs):
        figures.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    return figures


def test_one_figure_per_task_with_a_cost_panel_per_constraint(tmp_path, write_run, saved_figures):
    two_constraint_runs(tmp_path / "k2", write_run)
    write_run(tmp_path / "k1", [1.0, 2.0], [3.0, 4.0], task="SafetyAntVelocity-v1")
    figures = plot_tasks(group_runs(load_runs([tmp_path])), tmp_path / "figs", cut=20_000)
    assert sorted(figures) == ["SafetyAntVelocity-v1", TASK]
    for task, panels, fig in zip(sorted(figures), (2, 3), saved_figures, strict=True):
        assert png_size(figures[task])[1] == 324  # one row of 3.6 inches at 90 dpi
        assert [ax.get_title() for ax in fig.axes][:2] == [
            f"{task}: reward",
            f"{task}: episodic cost" if panels == 2 else f"{task}: episodic cost 0",
        ]
        assert len(fig.axes) == panels
        # the panels keep 4.8 inches each; the legend sits beside the last one, inside the image
        assert png_size(figures[task])[0] > panels * 432
        legend = fig.axes[-1].get_legend().get_window_extent()
        assert legend.x0 > fig.axes[-1].get_window_extent().x1
        assert legend.x1 <= fig.bbox.x1


def test_figure_rows_per_algorithm_and_colours_per_strategy(tmp_path, write_run, saved_figures):
    write_run(tmp_path / "ppo_soft", [1.0, 2.0], [3.0, 4.0])
    write_run(tmp_path / "ppo_free", [5.0, 6.0], [50.0, 60.0], strategy="reward_only")
    write_run(tmp_path / "sac_soft", [1.0, 3.0], [3.0, 4.0], algo="sac")
    write_run(tmp_path / "sac_soft_long", [1.0, 3.0, 5.0], [3.0, 4.0, 5.0], algo="sac")
    write_run(tmp_path / "ant", [1.0, 2.0], [3.0, 4.0], task="SafetyAntVelocity-v1", algo="sac")
    plot_tasks(group_runs(load_runs([tmp_path])), tmp_path / "figs")
    ant, hopper = saved_figures
    assert hopper.get_suptitle() == TASK
    titles = [ax.get_title() for ax in hopper.axes]
    assert titles == ["ppo: reward", "ppo: episodic cost", "sac: reward", "sac: episodic cost"]
    ppo_reward, _, sac_reward, sac_cost = hopper.axes
    assert sac_reward.get_shared_x_axes().joined(ppo_reward, sac_reward)  # one step axis
    colours = {line.get_label(): line.get_color() for line in ppo_reward.lines}
    assert set(colours) == {"soft_switch, 1 seed", "reward_only, 1 seed"}
    shades = {line.get_label(): line.get_color() for line in sac_reward.lines}
    assert set(shades) == {
        "soft_switch (total_steps=200), 1 seed",
        "soft_switch (total_steps=300), 1 seed",
    }
    # soft_switch's hue in every row and figure; its two sac groups are darker and lighter
    hue = to_rgb(colours["soft_switch, 1 seed"])
    assert to_rgb(ant.axes[0].lines[0].get_color()) == hue
    dark, light = (to_rgb(shades[f"soft_switch (total_steps={n}), 1 seed"]) for n in (200, 300))
    assert all(d < h < li for d, h, li in zip(dark, hue, light, strict=True) if 0 < h < 1)
    assert dark == pytest.approx([0.6 * h for h in hue])
    assert light == pytest.approx([h + 0.4 * (1 - h) for h in hue])
    assert colours["reward_only, 1 seed"] != colours["soft_switch, 1 seed"]
    # each row has its own legend, with its own groups
    assert sorted(t.get_text() for t in sac_cost.get_legend().get_texts()) == sorted(shades)


def test_figure_draws_the_test_episodes_dotted(tmp_path, write_run, monkeypatch):
    write_run(tmp_path / "plain", [1.0, 2.0], [3.0, 4.0])
    evaluated = write_run(tmp_path / "tested", [0.0], [(0.0, 0.0)], limit=[25.0, 10.0])
    (evaluated / "metrics.csv").write_text(EVALUATED)
    figures = []
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: figures.append(fig)
    )
    groups = group_runs(load_runs([tmp_path / "tested"]))
    plot_tasks(groups, tmp_path / "figs")
    reward_ax, cost0_ax, cost1_ax = figures[0].axes
    (test,) = [
        line for line in reward_ax.lines if line.get_linestyle() == ":" and line.get_xdata().size
    ]
    assert list(test.get_xdata()) == [20_000, 40_000, 50_000, 60_000]
    assert list(test.get_ydata()) == [200, 400, 500, 600]  # epoch 5 finished no episode, yet counts
    (cost0,) = [line for line in cost0_ax.lines if line.get_linestyle() == ":"]
    assert list(cost0.get_ydata()) == [20, 40, 40, 60]
    assert "test episodes (dotted)" in [t.get_text() for t in cost1_ax.get_legend().get_texts()]
    plot_tasks(group_runs(load_runs([tmp_path / "plain"])), tmp_path / "figs")
    assert not [line for line in figures[1].axes[0].lines if line.get_linestyle() == ":"]


PAGE = f"""# Results

Hand-written introduction.

{BEGIN}
old tables
{END}

Hand-written discussion.
"""


def test_command_writes_the_page_between_the_markers(tmp_path, write_run, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    group_of_two_and_reference(tmp_path / "runs", write_run)
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text(PAGE)
    command = ["runs", "--page", "docs/results.md", "--figures", "docs/assets/results"]
    main([*command, "--cut-steps", "60000"])
    text = page.read_text()
    assert text.startswith("# Results\n\nHand-written introduction.\n\n" + BEGIN)
    assert text.endswith(END + "\n\nHand-written discussion.\n")
    assert "old tables" not in text
    assert "From 3 runs below `runs`." in text
    assert f"## {TASK}" in text and "### As if stopped at 60k steps" in text
    assert f"](assets/results/{TASK}.png)" in text
    assert "| soft_switch | 100k | 2 (1 unfinished) | 100 ± 0 |" in text
    assert "| OmniSafe, seed 0, 4,000 steps per epoch, 2-core machine | PPOLag | 300k |" in text
    assert png_size(tmp_path / "docs" / "assets" / "results" / f"{TASK}.png")
    assert not (tmp_path / "comparison").exists()  # --out only when asked for
    assert "wrote docs/results.md" in capsys.readouterr().out
    main([*command, "--cut-steps", "60000"])
    assert page.read_text() == text  # the same runs, the same page
    main(command)  # the runs are shorter than the default cut, 300k: no cut table
    assert "As if stopped" not in page.read_text()


def test_command_creates_a_page_and_refuses_one_without_markers(tmp_path, write_run, capsys):
    write_run(tmp_path / "runs" / "a", [1.0], [1.0])
    new = tmp_path / "new.md"
    main([str(tmp_path / "runs"), "--page", str(new), "--out", str(tmp_path / "out")])
    assert new.read_text().startswith(f"# Results\n\n{BEGIN}\n\nFrom 1 run below")
    assert (tmp_path / "assets" / "new" / f"{TASK}.png").exists()  # the default folder
    assert (tmp_path / "out" / "comparison.csv").exists()
    plain = tmp_path / "plain.md"
    plain.write_text("# Results\n")
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "runs"), "--page", str(plain), "--figures", str(tmp_path / "f")])
    assert stop.value.code == 2 and "has no generated part" in capsys.readouterr().err
    assert plain.read_text() == "# Results\n" and not (tmp_path / "f").exists()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "runs"), "--figures", str(tmp_path / "f")])
