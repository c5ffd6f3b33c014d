"""Fused numba kernel for the capture's last step: int16 counts ``round(x / V_th)``.

:func:`neurosim.capture.counts_int16` computes V_th with torch (``mean|x| / k``, the
reference reduction order), then this kernel divides, rounds half to even, checks the
int16 range and narrows in ONE pass over ``x`` (torch needs a divide pass, a round pass,
an ``aminmax`` pass when the range check can fail, and a narrowing copy). The arithmetic
is the same float32 IEEE divide and round-half-even as ``torch.div`` + ``torch.round``,
so the counts are equal bit for bit (``tests/test_counts_fused.py``). Threads: numba's
``prange`` over rows, as many as torch uses.
"""
from __future__ import annotations

import numpy as np
import torch

try:  # numba is a core dependency; the torch path covers an environment without it
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

MIN_ELEMENTS = 1 << 15  # smaller inputs do not repay a kernel call

if numba is not None:

    @njit(parallel=True, cache=True, nogil=True)
    def _quantize_rows(x, vth, out, bad):  # pragma: no cover - compiled
        rows, cols = x.shape
        for i in prange(rows):
            v = vth[i]
            flag = 0
            for j in range(cols):
                s = np.rint(x[i, j] / v)
                if s > 32767.0 or s < -32768.0:
                    flag = 1
                out[i, j] = np.int16(s) if flag == 0 else np.int16(0)
            bad[i] = flag


def available() -> bool:
    """True when the fused kernel can run (numba importable)."""
    return numba is not None


def quantize_int16(x: torch.Tensor, vth: torch.Tensor, out: torch.Tensor) -> bool:
    """Write ``round(x / vth[:, None])`` (float32 divide, half to even) into ``out`` (int16).

    ``x``: float32 [rows, C] on the CPU, C-contiguous; ``vth``: float32 [rows]; ``out``:
    int16 [rows, C]. Returns False (``out`` then undefined) when a count falls outside int16,
    so the caller can raise its own message from the reference path.
    """
    bad = np.zeros(x.shape[0], dtype=np.uint8)
    n = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)
    _quantize_rows(x.numpy(), vth.numpy(), out.numpy(), bad)
    return not bool(bad.any())
