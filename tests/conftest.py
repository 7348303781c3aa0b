"""Project-wide test settings.

- One torch thread: the suite runs on small shared CPUs.
- Hypothesis runs derandomized under CI (``CI`` set), so a CI run is reproducible; locally it
  explores new examples every run.
"""

import os

import torch
from hypothesis import settings

torch.set_num_threads(1)
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
