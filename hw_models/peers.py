"""Peer estimators applied to the same :class:`Activity` records: KerasSpiking and SpikingJelly.

What a user would otherwise quote, computed on exactly the events we price, so the
difference can be explained term by term.

* **KerasSpiking** ``ModelEnergy`` (nengo/keras-spiking, keras_spiking/model_energy.py): per
  device, J per synaptic op and J per neuron update, "we do not account for any overhead".
  Spiking devices pay ``synops x energy_per_synop + neurons x timesteps x energy_per_neuron``
  (every neuron updates every step, silent or not); non-spiking devices (cpu, gpu, arm) pay
  every connection once per inference. Device table (J): loihi (23.6 + 3.5) e-12 per synop and
  81e-12 per neuron (Davies et al. 2018), spinnaker 13.3e-9 / 26e-9, spinnaker2 450e-12 /
  2.19e-9 (Hoeppner et al., arXiv:1903.08941), gpu 0.3e-9 / 0.3e-9, cpu 8.6e-9, arm 0.9e-9
  (Degnan et al., IEEE TVLSI 2015). KerasSpiking needs TensorFlow; its formula is a product
  of counts and this table, reproduced here (not installed; the source is cited).
* **SpikingJelly** ``estimate_lemaire_energy`` (spikingjelly 2.0.0,
  activation_based/op_counter/analytical_energy.py), after Lemaire et al., "An Analytical
  Estimation of Spiking Neural Networks Energy Efficiency", ICONIP 2022 (arXiv:2210.13107):
  45 nm, 32-bit words; add 0.1 pJ, mult 3.1 pJ; SRAM access energy per byte interpolated
  linearly through (0, 0), (8 KB, 10/4), (32 KB, 20/4), (1 MB, 100/4) pJ, clamped at 1 MB. For
  an ``nn.Linear`` with a binary spike input and no bias, per step: synops and accumulator
  addressing each cost one add; input reads 4 B per spike from a FIFO of
  ``snn_fifo_capacity_elements`` (1000) words; weight reads 4 B per synop from a buffer the
  size of the layer's 32-bit weights; membrane potential read + write 4 B each per synop from
  a buffer of ``out_features`` words. :func:`lemaire_energy_pj` is that formula on our counts;
  tests/test_hw_validation.py checks it against the installed library where it is present.
"""
from __future__ import annotations

from typing import Iterable

from .activity import Activity

# KerasSpiking ModelEnergy.devices (model_energy.py): J per synaptic op, J per neuron update, spiking?
KERAS_SPIKING_DEVICES: dict[str, tuple[float, float, bool]] = {
    "cpu": (8.6e-9, 8.6e-9, False),        # Degnan et al. 2015 (i7-4960X), one MAC per synop
    "gpu": (0.3e-9, 0.3e-9, False),        # Degnan et al. 2015 (GTX Titan Black)
    "arm": (0.9e-9, 0.9e-9, False),        # Degnan et al. 2015 (ARM Cortex-A)
    "loihi": ((23.6 + 3.5) * 1e-12, 81e-12, True),   # Davies et al. 2018
    "spinnaker": (13.3e-9, 26e-9, True),   # Hoeppner et al. 2019, arXiv:1903.08941
    "spinnaker2": (450e-12, 2.19e-9, True),  # Hoeppner et al. 2019, arXiv:1903.08941
}

# SpikingJelly 2.0.0 LemaireEnergyCostConfig / LemaireEnergyConfig defaults (Lemaire et al. 2022)
LEMAIRE_ADD_PJ = 0.1          # 32-bit add at 45 nm
LEMAIRE_MUL_PJ = 3.1          # 32-bit mult at 45 nm
LEMAIRE_WORD_BYTES = 4        # every access is a 32-bit word
LEMAIRE_MEMORY_POINTS = ((0.0, 0.0), (8 * 1024.0, 10.0 / 4), (32 * 1024.0, 20.0 / 4), (1024 * 1024.0, 100.0 / 4))
LEMAIRE_FIFO_WORDS = 1000     # snn_fifo_capacity_elements default


def keras_spiking_energy_j(acts: Iterable[Activity], device: str) -> dict[str, float]:
    """KerasSpiking's estimate for the records (J over all their tokens).

    Spiking devices: ``synaptic_ops x e_synop`` + neurons x steps x ``e_neuron``, with one
    encoding neuron per input channel of every layer that emits its own spikes (records with
    ``same_input_as`` share them). Non-spiking devices: ``dense_macs x e_synop`` + one
    update per neuron per token. Returns ``{"synop_j", "neuron_j", "total_j"}``.
    """
    try:
        e_syn, e_neu, spiking = KERAS_SPIKING_DEVICES[device]
    except KeyError:
        raise ValueError(f"unknown KerasSpiking device {device!r}; choose one of {', '.join(KERAS_SPIKING_DEVICES)}") from None
    syn = neu = 0.0
    for a in acts:
        own = not a.same_input_as
        if spiking:
            syn += a.synaptic_ops * e_syn
            neu += (a.input_slots * a.steps * e_neu) if own else 0.0
        else:
            syn += a.dense_macs * e_syn
            neu += (a.input_slots * e_neu) if own else 0.0
    return {"synop_j": syn, "neuron_j": neu, "total_j": syn + neu}


def lemaire_memory_pj_per_byte(capacity_bytes: float) -> float:
    """SpikingJelly's Lemaire SRAM cost per byte for a buffer of ``capacity_bytes`` (pJ/B)."""
    pts = LEMAIRE_MEMORY_POINTS
    m = max(pts[0][0], min(float(capacity_bytes), pts[3][0]))
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if m <= x1:
            return y0 + (y1 - y0) / (x1 - x0) * (m - x0)
    return pts[3][1]


def lemaire_energy_pj(acts: Iterable[Activity]) -> dict[str, float]:
    """SpikingJelly's Lemaire estimate of the spiking linear layers in ``acts`` (pJ, all tokens).

    Per layer, summed over steps (the formula is linear in the spikes): ops = synops x add;
    addressing = synops x add; input = spikes x 4 B at the FIFO's cost; params = synops x
    4 B at the cost of an ``in x out x 4`` B buffer; potential = 2 x synops x 4 B at the cost
    of an ``out x 4`` B buffer (one token at a time, batch 1). Returns the components and
    ``total_pj`` with SpikingJelly's names.
    """
    out = {"ops_pj": 0.0, "addressing_pj": 0.0, "inout_pj": 0.0, "params_pj": 0.0, "potential_pj": 0.0}
    w = LEMAIRE_WORD_BYTES
    for a in acts:
        syn, ev = float(a.synaptic_ops), float(a.events)
        out["ops_pj"] += syn * LEMAIRE_ADD_PJ
        out["addressing_pj"] += syn * LEMAIRE_ADD_PJ
        out["inout_pj"] += ev * w * lemaire_memory_pj_per_byte(LEMAIRE_FIFO_WORDS * w)
        out["params_pj"] += syn * w * lemaire_memory_pj_per_byte(a.in_features * a.out_features * w)
        out["potential_pj"] += 2.0 * syn * w * lemaire_memory_pj_per_byte(a.out_features * w)
    out["memory_pj"] = out["inout_pj"] + out["params_pj"] + out["potential_pj"]
    out["total_pj"] = out["ops_pj"] + out["addressing_pj"] + out["memory_pj"]
    return out
