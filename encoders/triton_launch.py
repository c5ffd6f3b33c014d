"""Launching cached Triton kernels through their compiled launcher, without Triton's per-call binding.

Triton's JIT launch (``kernel[grid](*args)``) binds the arguments, computes the
specialization key and looks the compiled kernel up on every call: 20-35 us of host time a
launch on the H200 machine measured (``benchmarks/encoders_host.py``), against 4-6 us for the
compiled kernel's own C launcher. :func:`launch` keeps compiled kernels in a dict keyed by
what the caller names (constexprs, integer kinds: see :func:`int_kind`) plus the pointers'
16-byte alignment, the launch options and the device, and calls the C launcher with the
tensors' addresses. The first launch of a key goes through the JIT (which compiles the
kernel, checks the pointers and returns it). Used by the encoders' kernels
(:mod:`encoders._triton`) and by the GPU replay (``neurosim.sim.kernels_triton``).

The direct call uses Triton's ``CompiledKernel`` internals as of 3.6 (the version measured,
which the CUDA builds of torch 2.11 bring); other versions, kernels needing scratch memory,
registered launch hooks, and kernels on CPU tensors (Triton's interpreter) take Triton's way.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

try:
    import triton
except ImportError:  # pragma: no cover - CPU-only torch builds
    triton = None
try:
    from triton import knobs
except ImportError:  # pragma: no cover - Triton before 3.4
    knobs = None

__all__ = ["FAST_LAUNCH", "hooks", "int_kind", "launch", "pointers"]

FAST_LAUNCH = triton is not None and triton.__version__.startswith("3.6.")
_COMPILED: dict[tuple, tuple[Any, tuple | None]] = {}  # key -> (compiled kernel, its direct launch or None)


def int_kind(v: int, specialized: bool = True) -> tuple:
    """What Triton's specialization sees of an integer argument: its width, and (unless the
    kernel lists it in ``do_not_specialize``) whether it is 1 or a multiple of 16."""
    width = 32 if -2**31 <= v < 2**31 else 64 if -2**63 <= v < 2**63 else 65
    return (width, v == 1, v % 16 == 0) if specialized else (width,)


def hooks() -> bool:
    """Whether launch hooks are registered with Triton (launches then go through Triton's
    runner, which calls them). Triton 3.6 keeps them in chains that are never None: a chain
    with no hooks is no hook."""
    if knobs is None:  # pragma: no cover - Triton before 3.4
        return False
    enter, leave = knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook
    return bool(getattr(enter, "calls", enter)) or bool(getattr(leave, "calls", leave))


def pointers(*tensors: torch.Tensor, views: tuple[torch.dtype | None, ...] | None = None) -> Callable:
    """The ``ptrs`` argument of :func:`launch`: called with True, the tensors' addresses; with
    False, the tensors themselves, flattened and viewed as ``views[i]`` where that is given."""
    def make(addresses: bool):
        if addresses:
            return [t.data_ptr() for t in tensors]
        if views is None:
            return tensors
        return tuple(t if v is None else t.reshape(-1).view(v) for t, v in zip(tensors, views))
    return make


def launch(kernel: Any, grid: tuple[int, int], key: tuple, ptrs: Callable, rest: tuple, cuda: bool,
           options: tuple[tuple[str, Any], ...] = ()) -> None:
    """``kernel[grid](*ptrs(False), *rest, **dict(options))``: the pointer arguments (the
    kernel's first parameters), then every other parameter in order, constexprs included.
    ``key`` must name every constexpr and the kind (:func:`int_kind`) of every integer in
    ``rest`` and the pointers' dtypes where they vary; ``cuda``: the tensors are on a GPU
    (else Triton's interpreter runs the kernel). A cached kernel is launched with the
    addresses alone: ``ptrs`` makes tensors only for a key's first launch."""
    if FAST_LAUNCH and cuda:
        device = torch._C._cuda_getDevice()  # Triton launches on the current device
        addrs = ptrs(True)
        full = (key, options, device) + tuple(a % 16 == 0 for a in addrs)
        entry = _COMPILED.get(full)
        if entry is not None:
            compiled, direct = entry
            if direct is None or hooks():
                compiled[grid + (1,)](*ptrs(False), *rest)  # pragma: no cover - scratch memory or hooks: Triton's way
            else:  # the compiled launcher itself, addresses as integers (device memory, or pinned
                # host memory, whose device address is its host address under unified addressing;
                # the first launch, through the JIT, checked them as tensors)
                run, function, meta, cooperative, pdl = direct
                run(grid[0], grid[1], 1, torch._C._cuda_getCurrentRawStream(device), function, cooperative, pdl,
                    None, None, meta, None, None, None, *addrs, *rest)
            return
        compiled = kernel[grid](*ptrs(False), *rest, **dict(options))
        if compiled is not None and hasattr(compiled, "__getitem__") and hasattr(compiled, "packed_metadata"):
            compiled._init_handles()
            run = compiled.run
            scratch = getattr(run, "global_scratch_size", 1) or getattr(run, "profile_scratch_size", 1)
            direct = None if scratch or not hasattr(run, "launch") else (
                run.launch, compiled.function, compiled.packed_metadata, run.launch_cooperative_grid, run.launch_pdl)
            _COMPILED[full] = (compiled, direct)
        return
    kernel[grid](*ptrs(False), *rest, **dict(options))
