"""Timers shared by the encode/decode benchmarks: wall time with the device synchronized around
each call, interleaved rounds (one call of each function per round, so machine-load drift hits
all of them alike) and device time from CUDA events."""
from __future__ import annotations

import time
from typing import Callable

import torch


def wall_s(fn: Callable[[], object], cuda: bool) -> float:
    """Wall time (s) of one call of ``fn``, the CUDA device synchronized before and after."""
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, cuda: bool) -> dict[str, list[float]]:
    """Wall times (s) of each function over ``rounds`` rounds, one call of each per round,
    after one untimed warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(wall_s(fn, cuda))
    return times


def cuda_device_us(fn: Callable[[], object], reps: int = 20) -> float:
    """Device time (us) per call of ``fn``: one warm-up call, then CUDA events around ``reps``
    back-to-back calls (no host waits between them, so launch gaps hide behind the kernels)."""
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps * 1e3
