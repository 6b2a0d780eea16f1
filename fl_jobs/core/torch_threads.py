"""Thread control for torch on small, shared machines.

The models here are small: extra intra-op threads buy little and, when other processes share
the cores, their spin-waiting can slow training down by an order of magnitude (measured on
2 busy cores). Workers and the in-process baselines therefore run single-threaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with one torch intra-op thread, restoring the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
