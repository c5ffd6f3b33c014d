"""Time-stepped, event-driven replay of spike trains through a layer's integer weights.

``replay_layer`` replays one layer, ``replay_trace`` every layer of a spike trace
(streaming, layer by layer), ``replay_spikes`` an explicit spike train. Results are exact:
the integer accumulators equal the dense integer matmul ``counts @ q.T``. See
:mod:`neurosim.sim.layer` for the arithmetic, :mod:`neurosim.sim.engine` for how a step is
applied and :mod:`neurosim.sim.events` for how events are listed.
"""
from .engine import ENGINES
from .layer import LayerReplay, replay_layer, replay_spikes, replay_with, spike_train, window
from .model import ModelReplay, replay_trace
from .operand import Operand, prepare_weight
from .settings import ReplaySettings

__all__ = [
    "ENGINES", "LayerReplay", "ModelReplay", "Operand", "ReplaySettings", "replay_with",
    "prepare_weight", "replay_layer", "replay_spikes", "replay_trace", "spike_train", "window",
]
