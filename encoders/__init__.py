"""Integer spike counts <-> spike trains (SpikingBrain / Int2Spike semantics). Leaf package.

>>> import numpy as np, encoders
>>> encoders.encode(np.array([5]), "bitwise")[:, 0].tolist()
[1, 0, 1]
"""
from .code import (
    BIT_ORDERS,
    DEFAULT_SCHEME,
    MAX_ACCUMULATED_STEPS,
    MAX_BITWISE_STEPS,
    REGISTRY,
    Scheme,
    SpikeCode,
    check_bit_order,
    get_scheme,
    naf_digits,
    scheme_names,
)
# The rest needs torch (seconds to import on a busy machine): loaded on first use, so that
# ``import encoders`` for the scheme registry (command-line parsing) stays instant.
_LAZY = {
    "events": ("EVENT_DTYPE", "PackedSpikes", "SpikeEvents", "from_events", "pack_spikes", "to_events",
               "unpack_spikes"),
    "quantize": ("VTH_MAX", "VTH_MIN", "SpikeCounts", "clip_counts", "spike_counts"),
    "schemes": ("BIPOLAR", "BITWISE", "SCHEMES", "SIGNED", "check_scheme", "count_range", "decode", "default_steps",
                "encode", "step_weights", "steps_for_value", "steps_needed"),
}
_SUBMODULES = frozenset({"events", "quantize", "schemes", "_arrays", "_kernels"})
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> object:
    from importlib import import_module

    if name in _SUBMODULES:  # ``encoders.schemes`` etc. without an explicit import
        return import_module(f".{name}", __name__)
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'encoders' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "BIT_ORDERS", "DEFAULT_SCHEME", "MAX_ACCUMULATED_STEPS", "MAX_BITWISE_STEPS", "REGISTRY", "Scheme", "SpikeCode",
    "check_bit_order", "get_scheme", "naf_digits", "scheme_names",
    "BIPOLAR", "BITWISE", "EVENT_DTYPE", "SCHEMES", "SIGNED", "VTH_MAX", "VTH_MIN",
    "PackedSpikes", "SpikeCounts", "SpikeEvents",
    "check_scheme", "clip_counts", "count_range", "decode", "default_steps", "encode",
    "from_events", "pack_spikes", "spike_counts", "step_weights", "steps_for_value",
    "steps_needed", "to_events", "unpack_spikes",
]
