"""Fixtures for the algorithm tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def single_thread():
    """One torch thread: tiny tensors on a shared 2-core machine run fastest (and steadiest)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
