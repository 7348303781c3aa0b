"""Installing the package that the recipes run on is quiet: no deprecated packaging metadata."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_package_metadata_raises_no_setuptools_warning(monkeypatch):
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("SPDX license strings need setuptools >= 77, as pyproject.toml requires")
    from setuptools.config.pyprojecttoml import apply_configuration, read_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(ROOT)  # package discovery is relative to the project
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. project.license as a TOML table is deprecated
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert dist.metadata.license_expression == "MIT"
    requires = read_configuration(ROOT / "pyproject.toml")["build-system"]["requires"]
    assert requires == ["setuptools>=77"]  # the first setuptools that reads SPDX expressions
