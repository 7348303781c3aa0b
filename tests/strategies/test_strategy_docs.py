"""The code in docs/strategies.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def test_strategy_page_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    runnable = [block for block in blocks if "actor.parameters()" not in block]
    assert len(runnable) >= 3
    namespace: dict[str, object] = {"__name__": "docs_strategies"}
    for block in runnable:
        exec(compile(block, str(DOC), "exec"), namespace)
    torch.testing.assert_close(
        namespace["pcrpo"](namespace["td"])["update"], torch.tensor([0.25, 0.75])
    )
    for block in runnable:  # re-running (a notebook cell again) re-registers the same class
        exec(compile(block, str(DOC), "exec"), namespace)
