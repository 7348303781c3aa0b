"""The documentation site builds without warnings and documents what the code offers."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG = ROOT / "recipes" / "config"


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None
    or importlib.util.find_spec("mkdocstrings_handlers") is None,
    reason="mkdocs-material and mkdocstrings[python] are not installed (pip install -e '.[docs]')",
)
def test_site_builds_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "WARNING" not in done.stderr, done.stderr[-4000:]
    # the API reference is generated from the docstrings
    strategies = (tmp_path / "api" / "strategies" / "index.html").read_text()
    assert "gradmanip.strategies.soft_switch.SoftSwitch" in strategies
    assert "check_strategy" in strategies
    assert ":class:" not in strategies and ":func:" not in strategies  # Sphinx roles rewritten
    # the tutorials show their code files (included by pymdownx.snippets)
    tutorial = (tmp_path / "tutorials" / "02_custom_strategy" / "index.html").read_text()
    assert "SmoothedSwitch" in tutorial and "--8&lt;--" not in tutorial
    assert (tmp_path / "assets" / "quickstart_curves.png").exists()


def nav_pages(nav: list) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages.extend(nav_pages(value) if isinstance(value, list) else [value])
    return pages


def test_every_page_is_in_the_nav():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    in_nav = set(nav_pages(config["nav"]))
    on_disk = {
        str(p.relative_to(DOCS))
        for p in DOCS.rglob("*.md")
        if "code" not in p.relative_to(DOCS).parts
    }
    assert on_disk - in_nav == set(), "pages missing from the nav of mkdocs.yml"


def test_quickstart_picture_is_small_and_shown():
    picture = DOCS / "assets" / "quickstart_curves.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size < 100_000
    assert "](assets/quickstart_curves.png)" in (DOCS / "quickstart.md").read_text()


def config_fields(data: dict, prefix: str = "") -> list[str]:
    """Dotted names of the leaves of a recipe configuration (Hydra's own keys left out)."""
    fields = []
    for key, value in data.items():
        if key in ("defaults", "hydra", "_target_", "_partial_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "kwargs":
            fields.extend(config_fields(value, f"{name}."))
        else:
            fields.append(name)
    return fields


def test_recipes_page_documents_every_setting():
    page = (DOCS / "recipes.md").read_text()
    documented = set(re.findall(r"`([\w.]+)`", page))
    main = yaml.safe_load((CONFIG / "ppo_softswitch.yaml").read_text())
    missing = [f for f in config_fields(main) if f not in documented]
    for algo in sorted((CONFIG / "algo").glob("*.yaml")):
        text = algo.read_text()
        prefix = "" if text.startswith("# @package _global_") else "algo."  # a global preset
        fields = [f for f in config_fields(yaml.safe_load(text)) if f != "defaults"]
        missing += [f"{prefix}{f}" for f in fields if f"{prefix}{f}" not in documented]
    env = yaml.safe_load((CONFIG / "env" / "SafetyHopperVelocity-v1.yaml").read_text())
    missing += [f"env.{f}" for f in config_fields(env) if f"env.{f}" not in documented]
    for logger in sorted((CONFIG / "logger").glob("*.yaml")):
        fields = config_fields(yaml.safe_load(logger.read_text()))
        missing += [f"logger.{f}" for f in fields if f"logger.{f}" not in documented]
    for strategy in sorted((CONFIG / "strategy").glob("*.yaml")):
        assert f"`{strategy.stem}`" in page, f"strategy option {strategy.stem} is not documented"
        fields = config_fields(yaml.safe_load(strategy.read_text()))
        missing += [f"strategy={strategy.stem}: {f}" for f in fields if f not in documented]
    assert missing == [], f"settings missing from docs/recipes.md: {missing}"


def test_every_env_option_is_a_documented_task():
    tasks = (DOCS / "tasks.md").read_text()
    for env in sorted((CONFIG / "env").glob("*.yaml")):
        assert env.stem in tasks, f"{env.stem} has a recipe config but no entry in docs/tasks.md"


PAGES_WITH_CODE = ["concepts.md", "strategies.md", "tasks.md"]


def test_python_blocks_run():
    """Every ```python block of the pages runs on its own (```py marks fragments)."""
    program = ["import torch", "torch.set_num_threads(1)"]
    for page in PAGES_WITH_CODE:
        blocks = re.findall(r"^```python\n(.*?)^```", (DOCS / page).read_text(), re.S | re.M)
        assert blocks, f"{page} has no python blocks"
        program += [
            f"exec(compile({block!r}, '{page} block {i}', 'exec'), {{}})"
            for i, block in enumerate(blocks)
        ]
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(program)],
        cwd=ROOT,
        env={**os.environ, "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def test_every_page_with_python_blocks_is_checked():
    for page in DOCS.rglob("*.md"):
        if re.search(r"^```python\n(?!--8<--)", page.read_text(), re.M):
            assert str(page.relative_to(DOCS)) in PAGES_WITH_CODE, f"{page} is not checked"


def load_docs_hook():
    spec = importlib.util.spec_from_file_location(
        "sphinx_roles", DOCS / "hooks" / "sphinx_roles.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docstring_roles_become_inline_code():
    replace = load_docs_hook().replace_roles
    assert replace("see :class:`~gradmanip.rl.trainer.Trainer`.") == "see `Trainer`."
    role = ":func:`gradmanip.rl.collect.make_collector`"
    assert replace(role) == "`gradmanip.rl.collect.make_collector`"
    assert replace(":meth:`Trainer.train` and :mod:`x`") == "`Trainer.train` and `x`"
    assert replace("One epoch::\n\n    batch = next(c)") == "One epoch:\n\n    batch = next(c)"
    assert replace("a::b and `code::`\n\nplain") == "a::b and `code::`\n\nplain"  # untouched


def documented_defaults(page: str) -> dict[str, list[str]]:
    """``field -> [default cell, ...]`` from the rows ``| `field` | `default` | ... |``."""
    rows: dict[str, list[str]] = {}
    for field, default in re.findall(r"^\| `([\w.]+)`[^|]*\| `([^`|]+)` \|", page, re.M):
        rows.setdefault(field, []).append(default)
    return rows


def test_recipes_page_defaults_match_the_configuration():
    defaults = documented_defaults((DOCS / "recipes.md").read_text())
    main = yaml.safe_load((CONFIG / "ppo_softswitch.yaml").read_text())
    algos = [yaml.safe_load(p.read_text()) for p in sorted((CONFIG / "algo").glob("*.yaml"))]
    # a global preset that defines a whole algo (algo=sac) nests it under "algo"
    algos = [a["algo"] if "name" in a.get("algo", {}) else a for a in algos]
    checked = 0
    for field, cells in defaults.items():
        if field.startswith("algo."):
            path = field.split(".")[1:]
            actual = []
            for algo in algos:
                value = algo
                for part in path:
                    value = value.get(part, KeyError) if isinstance(value, dict) else KeyError
                actual.append(value)
        elif field in main:
            actual = [main[field]]
        else:
            continue
        for cell in cells:
            assert yaml.safe_load(cell) in actual, f"{field}: page says {cell}, config {actual}"
            checked += 1
    assert checked >= 40, f"only {checked} defaults found in docs/recipes.md"
