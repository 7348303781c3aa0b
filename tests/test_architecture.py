"""The package layout is the architecture: layers import one way, no module imports in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# what each part of the project may import from the project (besides itself)
ALLOWED = {
    "gradmanip.__init__": set(),
    "gradmanip.gaussian": set(),
    "gradmanip.tanh_gaussian": set(),
    "gradmanip.strategies": set(),
    "gradmanip.driver": {"gradmanip.strategies"},
    "gradmanip.objectives": {"gradmanip.strategies", "gradmanip.driver", "gradmanip.tanh_gaussian"},
    "gradmanip.fast": {"gradmanip.strategies", "gradmanip.driver", "gradmanip.gaussian"},
    "gradmanip.rl": {"gradmanip.gaussian", "gradmanip.tanh_gaussian"},
    "gradmanip.algos": {
        "gradmanip.strategies",
        "gradmanip.driver",
        "gradmanip.objectives",
        "gradmanip.fast",
        "gradmanip.rl",
        "gradmanip.gaussian",
    },
    "gradmanip.reporting": set(),
    "gradmanip.experiment": {
        "gradmanip.strategies",
        "gradmanip.driver",
        "gradmanip.objectives",
        "gradmanip.fast",
        "gradmanip.rl",
        "gradmanip.algos",
        "gradmanip.gaussian",
        "gradmanip.reporting",
        "safe_envs",
    },
    "safe_envs": set(),
}
# torchjd: an optional extra, imported only when a TorchJD combiner is built
THIRD_PARTY_OF_STRATEGIES = {"torch", "tensordict", "torchjd"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (at any depth of the file, not only at the top)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def part_of(name: str) -> str | None:
    if name == "gradmanip":
        return "gradmanip.__init__"
    for part in sorted(ALLOWED, key=len, reverse=True):
        if name == part or name.startswith(part + "."):
            return part
    return None


MODULES = {
    module_name(path): imports(path)
    for package in ("gradmanip", "safe_envs")
    for path in sorted((ROOT / package).rglob("*.py"))
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    part = part_of(module)
    assert part is not None, f"{module} belongs to no layer of the architecture"
    for name in MODULES[module]:
        other = part_of(name)
        if other is not None and other != part:
            assert other in ALLOWED[part], f"{module} imports {name}: {part} may not use {other}"


def test_strategies_need_only_torch_and_tensordict():
    for module, names in MODULES.items():
        if part_of(module) != "gradmanip.strategies":
            continue
        for name in names:
            top = name.split(".")[0]
            if top in {"gradmanip", "__future__"} or top in THIRD_PARTY_OF_STRATEGIES:
                continue
            assert top in __import__("sys").stdlib_module_names, f"{module} imports {name}"


def test_no_module_imports_in_a_cycle():
    graph = {
        module: {name for name in names if name in MODULES and name != module}
        for module, names in MODULES.items()
    }
    # a package's __init__ re-exports its modules: an edge into a package means its __init__
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :] + [nxt] if nxt in trail else [node, nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
