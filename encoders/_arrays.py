"""Array plumbing shared by the encoders: numpy/torch in, same kind out, input checks."""
from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def as_tensor(a: Any, name: str = "counts") -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, was_numpy)``; numpy arrays are wrapped without a copy where possible."""
    if isinstance(a, torch.Tensor):
        return a, False
    if isinstance(a, np.ndarray):
        if a.dtype == object or a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")
        if not a.dtype.isnative:  # big-endian data (e.g. from a file): torch takes native order only
            a = a.astype(a.dtype.newbyteorder("="))
        if a.dtype.kind == "u" and a.dtype.itemsize >= 2 and a.dtype != np.uint8:
            # torch has limited unsigned support: widen losslessly.
            if a.size and int(a.max()) > np.iinfo(np.int64).max:
                raise ValueError(f"{name} has values beyond the int64 range")
            a = a.astype(np.int64)
        return torch.from_numpy(np.require(a, requirements="C")), True
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(a).__name__}")


def like_input(t: torch.Tensor, was_numpy: bool) -> ArrayLike:
    """Hand a result back in the caller's array kind."""
    return t.cpu().numpy() if was_numpy else t


def integer_counts(a: Any, name: str = "counts") -> tuple[torch.Tensor, bool]:
    """Validate integer spike counts and return them as an integer tensor.

    Integer dtypes pass through untouched (no copy); float dtypes whose values are all whole
    and finite are converted to int64. Raises TypeError for bool/complex/object dtypes,
    ValueError for NaN, inf or fractions.
    """
    t, was_numpy = as_tensor(a, name)
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must have an integer (or integral float) dtype, got {t.dtype}")
    if t.is_floating_point():
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            bad = t[~finite].flatten()[0].item()
            raise ValueError(f"{name} contains non-finite values (first: {bad})")
        frac = t != torch.round(t)
        if bool(frac.any()):
            bad = t[frac].flatten()[0].item()
            raise ValueError(f"{name} must be integer-valued; found {bad}")
        if t.numel() and float(t.abs().max()) > 2.0**62:
            raise ValueError(f"{name} magnitude exceeds 2**62, the supported range")
        t = t.to(torch.int64)
    return t, was_numpy


def narrow_int(t: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Cast an integer tensor to the smallest signed dtype holding [lo, hi] (less memory traffic)."""
    for dt in (torch.int8, torch.int16, torch.int32):
        info = torch.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return t.to(dt)
    return t.to(torch.int64)
