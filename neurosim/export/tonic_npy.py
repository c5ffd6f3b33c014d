"""Tonic-compatible event arrays: a structured numpy array with fields x, t, p saved as .npy.

Tonic (the neuromorphic data-loading library) represents events of a 1-D sensor such as
the Spiking Heidelberg Digits as a structured array with integer fields ``x`` (channel),
``t`` (time, microseconds) and ``p`` (polarity), with ``sensor_size = (channels, 1, P)``
(tonic/datasets/hsd.py). Here ``x`` is the neuron (input channel), ``t`` the global step
``token * T + step`` times ``step_us`` microseconds, and ``p`` follows tonic's DVS
convention: 1 = ON (positive spike), 0 = OFF (negative spike). Unipolar schemes emit only
p = 1 (sensor_size P = 1); bipolar schemes use both (P = 2).

A JSON sidecar ``<file>.json`` carries what the array cannot: scheme, T, bit order, layer,
token range, V_th per token, sensor_size.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import encoders

from analysis.fileio import atomic_paths
from .selection import LayerSpikes, decode_events

TONIC_DTYPE = np.dtype([("x", "<i8"), ("t", "<i8"), ("p", "<i8")])
TONIC_FORMAT = "neurosim-tonic-npy"
TONIC_VERSION = 1


def sidecar_path(out: str | os.PathLike) -> Path:
    """The JSON sidecar written next to a .npy export: ``<out>.json``."""
    p = Path(out)
    return p.with_name(p.name + ".json")


@dataclass(frozen=True)
class TonicFile:
    """A tonic export read back: ``events`` (x, t, p) and the sidecar ``meta``."""

    events: np.ndarray
    meta: dict[str, Any]

    def counts(self) -> np.ndarray:
        """Decode to int64 counts [n_tokens, n_neurons] (rows from token_start)."""
        m = self.meta
        g = self.events["t"] // m["step_us"]
        tok = g // m["T"]
        pol = np.where(self.events["p"] == 1, 1, -1)
        return decode_events(
            tok, g - tok * m["T"], self.events["x"], pol, scheme=m["scheme"], T=m["T"],
            bit_order=m["bit_order"], token_start=m["token_start"], n_tokens=m["n_tokens"],
            n_neurons=m["n_neurons"],
        )


def tonic_events(ls: LayerSpikes, step_us: int = 1) -> np.ndarray:
    """The selection's events as a tonic structured array (fields x, t, p; int64)."""
    if isinstance(step_us, bool) or not isinstance(step_us, (int, np.integer)) or step_us < 1:
        raise ValueError(f"step_us must be a positive integer number of microseconds, got {step_us!r}")
    if encoders.get_scheme(ls.scheme).graded:
        raise ValueError(f"this format carries unit spikes only; export scheme {ls.scheme!r} (graded payloads) "
                         "as aer or csv")
    ev = ls.events
    arr = np.empty(len(ev), dtype=TONIC_DTYPE)
    arr["x"] = ev.neuron
    arr["t"] = ev.timestamp * int(step_us)
    arr["p"] = ev.polarity > 0
    return arr


def write_tonic(ls: LayerSpikes, out: str | os.PathLike, *, step_us: int = 1, overwrite: bool = False) -> Path:
    """Write ``ls`` as a tonic-compatible ``.npy`` plus its ``.json`` sidecar; return the .npy path.

    ``step_us``: microseconds per step (tonic times are in microseconds). Both files are
    written atomically; FileExistsError if either exists and ``overwrite`` is False.
    """
    arr = tonic_events(ls, step_us)
    meta = ls.metadata()
    meta.update(
        format=TONIC_FORMAT, version=TONIC_VERSION, step_us=int(step_us),
        sensor_size=[ls.n_neurons, 1, 2 if ls.bipolar else 1], dtype=str(TONIC_DTYPE.descr),
        polarity="p=1: +1 spike (ON), p=0: -1 spike (OFF)",
    )
    if ls.vth is not None:
        meta["vth"] = ls.vth.astype(float).tolist()
    with atomic_paths([out, sidecar_path(out)], overwrite) as (tmp, tmp_json):
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        tmp_json.write_text(json.dumps(meta, sort_keys=True, indent=1))
    return Path(out)


def read_tonic(path: str | os.PathLike) -> TonicFile:
    """Read a tonic export (.npy and its sidecar); ValueError if either is missing or foreign."""
    p = Path(path)
    side = sidecar_path(p)
    if not side.is_file():
        raise ValueError(f"{p}: its metadata sidecar {side.name} is missing")
    meta = json.loads(side.read_text())
    if meta.get("format") != TONIC_FORMAT or meta.get("version") != TONIC_VERSION:
        raise ValueError(f"{side}: not a {TONIC_FORMAT} v{TONIC_VERSION} sidecar")
    events = np.load(p, allow_pickle=False)
    if events.dtype != TONIC_DTYPE:
        raise ValueError(f"{p}: dtype {events.dtype} is not the tonic dtype {TONIC_DTYPE}")
    return TonicFile(events, meta)
