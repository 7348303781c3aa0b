"""Benchmark settings: one torch thread (the suite runs on small shared CPUs)."""

import torch

torch.set_num_threads(1)
