"""Timing helper shared by the benchmarks."""
from __future__ import annotations

import time
from typing import Callable


def time_call(fn: Callable[[], object], repeats: int) -> float:
    """Mean seconds per call of ``fn`` over ``repeats`` calls, after one warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats
