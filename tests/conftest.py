"""Project-wide test settings.

- One torch thread: the suite runs on small shared CPUs (``single_thread`` restores it for a
  test, whatever an earlier test set).
- Hypothesis runs derandomized under CI (``CI`` set), so a CI run is reproducible; locally it
  explores new examples every run.
"""

import os

import pytest
import torch
from hypothesis import settings

torch.set_num_threads(1)
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def single_thread():
    """One torch thread during the test, whatever an earlier test set: tiny tensors on a shared
    2-core machine run fastest (and steadiest)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
