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
from .events import EVENT_DTYPE, PackedSpikes, SpikeEvents, from_events, pack_spikes, to_events, unpack_spikes
from .quantize import VTH_MAX, VTH_MIN, SpikeCounts, clip_counts, spike_counts
from .schemes import (
    BIPOLAR,
    BITWISE,
    SCHEMES,
    SIGNED,
    check_scheme,
    count_range,
    decode,
    default_steps,
    encode,
    step_weights,
    steps_for_value,
    steps_needed,
)

__all__ = [
    "BIT_ORDERS", "DEFAULT_SCHEME", "MAX_ACCUMULATED_STEPS", "MAX_BITWISE_STEPS", "REGISTRY", "Scheme", "SpikeCode",
    "check_bit_order", "get_scheme", "naf_digits", "scheme_names",
    "BIPOLAR", "BITWISE", "EVENT_DTYPE", "SCHEMES", "SIGNED", "VTH_MAX", "VTH_MIN",
    "PackedSpikes", "SpikeCounts", "SpikeEvents",
    "check_scheme", "clip_counts", "count_range", "decode", "default_steps", "encode",
    "from_events", "pack_spikes", "spike_counts", "step_weights", "steps_for_value",
    "steps_needed", "to_events", "unpack_spikes",
]
