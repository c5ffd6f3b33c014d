"""Integer spike count <-> dense spike train, for the SpikingBrain / Int2Spike schemes and two more.

A spike train has shape ``[T, *counts.shape]`` and dtype int8. Step 0 comes first in time.
Semantics and default step counts T follow the public Int2Spike reference encoders
(BICLab/Int2Spike on GitHub, neuron.py; SpikingBrain report, arXiv:2509.05276):

========================  ===========  ==========================================
scheme                    spikes       default T for counts c
========================  ===========  ==========================================
``binary``                {0, 1}       max(c)            (c >= 0)
``ternary``               {-1, 0, 1}   max(abs(c))
``bitwise``               {0, 1}       max(1, ceil(log2(max(c) + 1)))   (c >= 0)
``bitwise-signed``        {-1, 0, 1}   ceil(log2(max(abs(c)) + 1))      sign-magnitude
``bitwise-twos``          {0, 1}       max(2, ceil(log2(max(abs(c)) + 1)) + 1)
``bitwise-naf``           {-1, 0, 1}   bit_length(3 max(abs(c))) - 1     (<= ceil(log2(|c|+1)) + 1)
``graded``                payload      1  (payload +-127 at 8 bits; wider counts clipped)
========================  ===========  ==========================================

``bitwise-naf`` sends the non-adjacent form (signed digits, no two adjacent non-zero, MSB
first): the signed binary representation with the fewest non-zero digits, so it never
spikes more than ``bitwise-signed``; T digits carry ``|c| <= floor((2**(T+1) - 1) / 3)``,
so T = 4 carries [-7, 7] (7 = 100-1) and up to +-10. ``graded`` (Loihi 2 graded spikes)
sends one event per non-zero count whose integer payload is the count itself.

Binary and ternary emit one unit per step while the remaining count is non-zero (ones
first, then silence). Bitwise schemes emit one bit per step, most significant bit first
(``bit_order="msb"``, as Int2Spike) or least significant first (``"lsb"``); in two's
complement the MSB weighs ``-2**(T-1)``.
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch

from ._arrays import ArrayLike, as_tensor, integer_counts, like_input, narrow_int
from . import _fused
from ._kernels import NUMPY, decode_steps, encode_steps, ops_for
from ._modes import mode_for

from .code import (
    BIT_ORDERS,
    MAX_ABS_STEPS_VALUE,
    MAX_BITWISE_STEPS,
    REGISTRY,
    Scheme,
    BitOrder,
    check_bit_order,
    check_T,
    get_scheme,
    scheme_names,
)

# Name sets, derived from the registry (encoders.code) for callers of the older API.
SCHEMES: tuple[str, ...] = tuple(REGISTRY)
BITWISE: frozenset[str] = frozenset(scheme_names(bitwise=True))
SIGNED: frozenset[str] = frozenset(scheme_names(signed=True))
# Schemes whose spikes carry a sign (-1 events exist on the wire).
BIPOLAR: frozenset[str] = frozenset(s.name for s in REGISTRY.values() if s.bipolar)
# encode refuses a train larger than this (T x elements bytes, int8) before allocating it;
# the environment variable overrides the default, the ``max_bytes`` argument overrides both.
MAX_TRAIN_BYTES = 4 << 30
MAX_TRAIN_BYTES_ENV = "NEUROSIM_MAX_TRAIN_BYTES"


def check_scheme(scheme: str) -> str:
    """Return ``scheme`` if known, else raise ValueError listing the valid names."""
    return get_scheme(scheme).name


def count_range(scheme: str, T: int) -> tuple[int, int]:
    """Inclusive range of counts that ``T`` steps of ``scheme`` can carry."""
    return get_scheme(scheme).count_range(T)


def steps_for_value(scheme: str, value: int) -> int:
    """Smallest T at which ``scheme`` can carry the single count ``value``."""
    return get_scheme(scheme).steps_for_value(value)


def steps_needed(scheme: str, lo: int, hi: int) -> int:
    """Default T (Int2Spike rule) for counts whose minimum is ``lo`` and maximum ``hi``."""
    return get_scheme(scheme).steps_needed(lo, hi)


def default_steps(counts: ArrayLike, scheme: str) -> int:
    """Default T for ``counts`` under ``scheme`` (see module docstring)."""
    t, _ = integer_counts(counts)
    lo, hi = _extremes(t)
    get_scheme(scheme).check_counts_sign(lo)
    return steps_needed(scheme, lo, hi)


def step_weights(scheme: str, T: int, bit_order: BitOrder = "msb") -> np.ndarray:
    """Integer weight of each step: decode(s) = sum_t weights[t] * s[t]. int64 array of length T."""
    return get_scheme(scheme).step_weights(T, bit_order)


def _extremes(t: torch.Tensor) -> tuple[int, int]:
    if t.numel() == 0:
        return 0, 0
    if t.device.type == "cpu" and t.numel() >= _fused.MIN_ELEMENTS and _fused.available():
        lo, hi = _fused.extremes(t.numpy())  # one parallel pass
    else:  # one launch, one read-back of both values
        both = torch.empty(2, dtype=t.dtype, device=t.device)
        torch.aminmax(t, out=(both[0], both[1]))
        lo, hi = both.tolist()
    _check_magnitude(lo, hi)
    return lo, hi


def _check_magnitude(lo: int, hi: int) -> None:
    if lo < -MAX_ABS_STEPS_VALUE or hi > MAX_ABS_STEPS_VALUE:
        raise ValueError("counts magnitude exceeds 2**62, the supported range")


def encode(
    counts: ArrayLike,
    scheme: str,
    T: int | None = None,
    bit_order: BitOrder = "msb",
    *,
    max_bytes: int | None = None,
    out: ArrayLike | None = None,
) -> ArrayLike:
    """Encode integer spike counts into a dense spike train.

    Args:
        counts: integer counts (numpy array or torch tensor, CPU or CUDA); integral floats
            are accepted.
        scheme: one of :data:`SCHEMES`.
        T: number of time steps; ``None`` uses the Int2Spike default for the data.
        bit_order: ``"msb"`` (step 0 = most significant bit) or ``"lsb"``; bitwise only,
            for binary/ternary the order is ones-first either way.
        max_bytes: refuse a train larger than this many bytes (``T * counts.size``; default
            :data:`MAX_TRAIN_BYTES`, 4 GiB, or the ``NEUROSIM_MAX_TRAIN_BYTES`` environment
            variable).
        out: write the train into this array (the same kind, device, shape and dtype as the
            result, C-contiguous) and return it: repeated calls reuse one buffer instead of
            allocating (and first touching) a fresh one each time. Its contents are
            unspecified if encode raises.

    Returns:
        int8 spike train of shape ``[T, *counts.shape]`` (``[T]`` for a 0-d count), the same
        array kind and device (``out`` itself when given).

    Raises:
        ValueError: unknown scheme, non-integer or non-finite counts, negative counts for an
            unsigned scheme, or a ``T`` too small for the data (the message names the
            offending value and the ``T`` it needs), or a train above ``max_bytes``; an ``out``
            of the wrong shape, device or layout.
        TypeError: not an array, or a bool/complex/object dtype; an ``out`` of the wrong
            kind or dtype.
    """
    sch = get_scheme(scheme)
    check_bit_order(bit_order)
    t, was_numpy = integer_counts(counts)
    msb = bit_order == "msb"
    mode = mode_for(sch)
    cpu_kernel = mode is not None and t.device.type == "cpu" and t.numel() >= _fused.MIN_ELEMENTS and _fused.available()
    gpu = None if cpu_kernel or mode is None or not _triton_device(t) else _gpu_kernels()
    one_pass = cpu_kernel or (gpu is not None and gpu.extremes_fit(t))
    known = _steps_known_before_reading(sch, T, t, max_bytes, out, was_numpy) if one_pass else None
    if known is not None:
        # T does not depend on the counts (given, graded, or out's leading dimension): one
        # pass writes the train and finds the counts' range (one read-back on a GPU),
        # checked afterwards with the same errors as below.
        steps, dest = known
        if cpu_kernel:
            train, lo, hi = _fused.encode_fused(t.numpy(), sch, steps, msb,
                                                out=None if dest is None else dest.numpy(), extremes=True)
        else:
            train, lo, hi = gpu.encode_triton(t, mode, steps, msb, out=dest, extremes=True)
        _check_magnitude(lo, hi)
        need = _check_counts(sch, scheme, T, lo, hi, t, max_bytes, sized=steps)
        if need != steps:  # T taken from out's shape, but the counts need another: as below
            _check_out(out, was_numpy, (need,) + tuple(t.shape), _train_dtype(sch), t.device)
        return out if out is not None else _wrap(train, was_numpy)
    if one_pass and not cpu_kernel and t.numel():
        # The counts' range from the kernel run as a min/max pass (T = 0): one launch, one read-back.
        _, lo, hi = gpu.encode_triton(t, mode, 0, msb, extremes=True)
        _check_magnitude(lo, hi)
    else:
        lo, hi = _extremes(t)
    T = _check_counts(sch, scheme, T, lo, hi, t, max_bytes)
    dest = None if out is None else _check_out(out, was_numpy, (T,) + tuple(t.shape), _train_dtype(sch), t.device)
    if cpu_kernel:
        # One pass over the counts as they are (no narrowing copy): the same train.
        train = _fused.encode_fused(t.numpy(), sch, T, msb, out=None if dest is None else dest.numpy())
        return out if out is not None else _wrap(train, was_numpy)
    if gpu is not None:
        train = gpu.encode_triton(t, mode, T, msb, out=dest)
        return out if out is not None else _wrap(train, was_numpy)
    train = _encode_reference(t, sch, T, msb, lo, hi)
    if dest is None:
        return _wrap(train, was_numpy)
    dest.copy_(torch.from_numpy(train) if isinstance(train, np.ndarray) else train)
    return out


def _check_counts(sch: Scheme, scheme: str, T: int | None, lo: int, hi: int, t: torch.Tensor,
                  max_bytes: int | None, sized: int | None = None) -> int:
    """The step count for counts ranging over [lo, hi] (default or ``T``), or ValueError: a
    negative count for an unsigned scheme, a bad or too small ``T``, a train too large
    (not checked again for ``sized`` steps, checked already)."""
    sch.check_counts_sign(lo)
    if T is None:
        T = sch.steps_needed(lo, hi)
    T = check_T(T)
    if sch.max_steps is not None and T > sch.max_steps:
        raise ValueError(f"T={T} exceeds {sch.max_steps} steps for scheme {scheme!r}")
    rlo, rhi = sch.count_range(T)
    if sch.graded and T and (lo < rlo or hi > rhi):
        bad = lo if lo < rlo else hi
        raise ValueError(f"value {bad} does not fit the {sch.payload_bits}-bit payload of scheme {scheme!r} "
                         f"([{rlo}, {rhi}]); clip the counts or use more payload bits")
    if lo < rlo or hi > rhi:
        bad = lo if lo < rlo else hi
        need = max(sch.steps_for_value(lo), sch.steps_for_value(hi))
        raise ValueError(
            f"T={T} is too small for scheme {scheme!r}: value {bad} is outside [{rlo}, {rhi}]; "
            f"it needs T >= {need}"
        )
    if T != sized:
        _check_train_size(sch, T, t, max_bytes)
    return T


def _steps_known_before_reading(sch: Scheme, T: object, t: torch.Tensor, max_bytes: int | None, out: object,
                                was_numpy: bool) -> tuple[int, torch.Tensor | None] | None:
    """``(T, out as a tensor)`` when T is known without reading the counts (given, a graded
    code's 1, or else the leading dimension of ``out``, to be confirmed once the counts'
    range is known) and it, the train's size and ``out`` pass their checks; else None (the
    caller then checks in the documented order, raising what is wrong)."""
    steps = T
    if T is None:
        if sch.graded:
            steps = 1
        elif isinstance(out, (np.ndarray, torch.Tensor)) and out.ndim == t.dim() + 1:
            steps = int(out.shape[0])
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        return None
    steps = int(steps)
    if sch.max_steps is not None and steps > sch.max_steps:
        return None
    try:
        _check_train_size(sch, steps, t, max_bytes)
        dest = None if out is None else _check_out(out, was_numpy, (steps,) + tuple(t.shape), _train_dtype(sch),
                                                   t.device)
    except (TypeError, ValueError):
        return None
    return steps, dest


def _encode_reference(t: torch.Tensor, sch: Scheme, T: int, msb: bool, lo: int, hi: int) -> np.ndarray | torch.Tensor:
    """The step loops of :mod:`encoders._kernels` (numpy on CPU, torch ops on CUDA)."""
    c = narrow_int(t.reshape(1) if t.dim() == 0 else t, min(lo, 0), max(hi, 0))
    if sch.bitwise and T >= torch.iinfo(c.dtype).bits:
        c = c.to(torch.int64)  # every shift stays below the word width
    if sch.graded:  # the payload at step 0 (T = 1 suffices; later steps silent); int8 up to 8 bits
        train = torch.zeros((T,) + tuple(c.shape), dtype=_train_dtype(sch), device=c.device)
        if T:
            train[0] = c
        return train.reshape((T,) + tuple(t.shape))
    ops, arr = ops_for(c)
    return encode_steps(ops, arr, sch, T, msb).reshape((T,) + tuple(t.shape))


@functools.lru_cache(maxsize=64)  # on every encode with ``out``; schemes are frozen
def _train_dtype(sch: Scheme) -> torch.dtype:
    """dtype of ``sch``'s trains: int8, or the narrowest holding a graded payload."""
    if sch.graded:
        return narrow_int(torch.empty(0, dtype=torch.int8), -sch.payload_max, sch.payload_max).dtype
    return torch.int8


def _gpu_kernels():
    """:mod:`encoders._triton` if Triton can run its kernels, else None (imported on first use)."""
    global _GPU
    if _GPU is None:
        from . import _triton

        _GPU = _triton if _triton.available() else False
    return _GPU or None


_GPU = None


def _triton_device(t: torch.Tensor) -> bool:
    """Whether ``t`` lives where the Triton kernels run (CUDA; tests widen this to CPU
    tensors under Triton's interpreter)."""
    return t.is_cuda


def _check_out(out: object, was_numpy: bool, shape: tuple[int, ...], dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
    """``out`` as a tensor sharing its memory, if it can take a result of ``shape`` and
    ``dtype`` on ``device`` in the caller's array kind; else TypeError or ValueError."""
    kind = "a numpy array" if was_numpy else "a torch tensor"
    if not isinstance(out, np.ndarray if was_numpy else torch.Tensor):
        raise TypeError(f"out must be {kind}, like the input, got {type(out).__name__}")
    if was_numpy and not out.flags.writeable:
        raise ValueError("out is read-only")
    dest = torch.from_numpy(out) if was_numpy else out
    if tuple(dest.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(dest.shape)}; the result has shape {tuple(shape)}")
    if dest.dtype != dtype:
        raise TypeError(f"out has dtype {dest.dtype}; the result has dtype {dtype}")
    if dest.device != device:
        raise ValueError(f"out is on {dest.device}; the result is on {device}")
    if not dest.is_contiguous():
        raise ValueError("out must be C-contiguous")
    return dest


def _check_train_size(sch: Scheme, T: int, t: torch.Tensor, max_bytes: int | None) -> None:
    """Refuse a train of more than ``max_bytes`` (int8: T x elements bytes) before allocating it."""
    if max_bytes is None:
        env = os.environ.get(MAX_TRAIN_BYTES_ENV, "").strip()
        try:
            max_bytes = int(float(env)) if env else MAX_TRAIN_BYTES
        except ValueError:
            raise ValueError(f"{MAX_TRAIN_BYTES_ENV}={env!r} is not a number of bytes") from None
    size = T * t.numel()
    if size > max_bytes:
        hint = " (a rate code needs one step per unit of count: a bitwise scheme needs log2 steps)" \
            if sch.rate else ""
        raise ValueError(
            f"a {sch.name!r} spike train of T={T} steps x {t.numel()} counts takes {_bytes(size)}, above the "
            f"{_bytes(max_bytes)} limit{hint}; raise it with max_bytes= or {MAX_TRAIN_BYTES_ENV}"
        )


def _bytes(n: int) -> str:
    for unit, scale in (("EiB", 1 << 60), ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _wrap(a, was_numpy: bool) -> ArrayLike:
    if isinstance(a, np.ndarray):
        return a if was_numpy else torch.from_numpy(a)
    return like_input(a, was_numpy)


def decode(
    spikes: ArrayLike, scheme: str, bit_order: BitOrder = "msb", dtype: object | None = None, *,
    out: ArrayLike | None = None,
) -> ArrayLike:
    """Exact inverse of :func:`encode`: spike train ``[T, *shape]`` -> integer counts ``shape``.

    The result has the narrowest signed integer dtype that holds every count ``T`` steps of
    ``scheme`` can carry (int8 for bitwise T <= 6, say), unless ``dtype`` (numpy or torch
    dtype, e.g. ``np.int64``) is given. ``out`` (the same kind, device, shape and dtype as
    the result, C-contiguous) receives the counts and is returned; its contents are
    unspecified if decode raises. Raises ValueError if a spike value is not allowed by
    ``scheme`` (e.g. -1 in ``binary``).
    """
    sch = get_scheme(scheme)
    check_bit_order(bit_order)
    s, was_numpy = as_tensor(spikes, "spikes")
    if s.dim() < 1:
        raise ValueError("spikes must have a leading time axis: shape [T, *shape]")
    if s.is_floating_point() or s.dtype == torch.bool or s.is_complex():
        s, _ = integer_counts(s, "spikes")
    allowed_lo, allowed_hi = sch.spike_values
    T = int(s.shape[0])
    mode = mode_for(sch)
    cpu = s.device.type == "cpu" and s.numel() >= _fused.MIN_ELEMENTS and _fused.available()
    gpu = not cpu and mode is not None and _triton_device(s) and _gpu_kernels() is not None
    if s.dtype == torch.int8 and T <= 62 and (cpu or gpu):
        # One pass: check the values and sum w_t * s_t; a bad value falls through to the
        # reference check below, which names it.
        w, reach, acc_np, acc_t = _decode_plan(sch, T, bit_order)
        direct = None  # the kernel writes straight into out when no cast follows
        if out is not None and (dtype is None or _torch_dtype(dtype) == acc_t):
            direct = _check_out(out, was_numpy, tuple(s.shape[1:]), acc_t, s.device)
        if cpu:
            acc = _fused.decode_fused(s.numpy(), w, allowed_lo, acc_np, allowed_hi,
                                      out=None if direct is None else direct.numpy())
            acc = None if acc is None else torch.from_numpy(acc)
        else:
            acc = _gpu_kernels().decode_triton(s, mode, bit_order == "msb", allowed_lo, allowed_hi, reach, acc_t,
                                               out=direct)
        if acc is not None:
            return out if direct is not None else _deliver(acc, was_numpy, dtype, out)
    return _deliver(_decode_reference(s, sch, bit_order, allowed_lo, allowed_hi), was_numpy, dtype, out)


def _deliver(acc: torch.Tensor, was_numpy: bool, dtype: object | None, out: ArrayLike | None) -> ArrayLike:
    """Counts in the caller's array kind and ``dtype`` (numpy casts numpy arrays, as before),
    copied into ``out`` if given."""
    if was_numpy:
        res = acc.cpu().numpy()
        res = res if dtype is None else res.astype(dtype)
    else:
        res = acc if dtype is None else acc.to(_torch_dtype(dtype))
    if out is None:
        return res
    t = torch.from_numpy(res) if was_numpy else res
    _check_out(out, was_numpy, tuple(t.shape), t.dtype, t.device).copy_(t)
    return out


def _decode_reference(s: torch.Tensor, sch: Scheme, bit_order: str, allowed_lo: int, allowed_hi: int) -> torch.Tensor:
    """Value check, then the step loops of :mod:`encoders._kernels` (graded: a sum)."""
    if s.numel():
        lo, hi = (int(v) for v in torch.aminmax(s))
        if lo < allowed_lo or hi > allowed_hi:
            raise ValueError(
                f"spike values for scheme {sch.name!r} must lie in [{allowed_lo}, {allowed_hi}]; "
                f"found {lo if lo < allowed_lo else hi}"
            )
    if sch.graded:  # payloads: the count is the sum of the steps' payloads
        acc = s.to(torch.int64).sum(dim=0)
        return acc.to(narrow_int(acc.reshape(-1)[:0], -sch.payload_max, sch.payload_max).dtype)
    if s.dtype != torch.int8:
        s = s.to(torch.int8)
    reach = sum(abs(int(v)) for v in sch.step_weights(s.shape[0], bit_order))
    acc_dtype = narrow_int(s[:0], -reach, reach).dtype
    ops, arr = ops_for(s)
    if ops is NUMPY:
        return torch.from_numpy(decode_steps(ops, arr, sch, bit_order == "msb",
                                             torch.empty(0, dtype=acc_dtype).numpy().dtype))
    return decode_steps(ops, arr, sch, bit_order == "msb", acc_dtype)


@functools.lru_cache(maxsize=256)
def _decode_plan(sch: Scheme, T: int, bit_order: str) -> tuple[np.ndarray, int, np.dtype, torch.dtype]:
    """Step weights, reach (bound of every partial sum) and accumulator dtype (numpy, torch)
    of a fused decode: the dtype the reference path returns (graded: the payload's, summed
    modulo its width as the reference's cast does; trains: the narrowest holding the reach).
    Cached: the weights array is shared, read-only."""
    if sch.graded:
        w = np.ones(T, dtype=np.int64)
        reach, acc_reach = T * sch.payload_max, sch.payload_max
    else:
        w = sch.step_weights(T, bit_order)
        reach = acc_reach = int(np.abs(w).sum())
    w.flags.writeable = False
    acc_t = narrow_int(torch.empty(0, dtype=torch.int8), -acc_reach, acc_reach).dtype
    return w, reach, torch.empty(0, dtype=acc_t).numpy().dtype, acc_t


def _torch_dtype(dtype: object) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype
