"""Per-layer Activity records of a run, by phase (prefill, decode), in a JSON file.

Written by ``neurosim generate --activity-out FILE.json`` and read by ``neurosim energy
--activity FILE.json``, so the hardware models price the activity of real spiking decode.
Layout: ``{"format": "neurosim-activity", "version": 1, "meta": {...}, "phases": {"prefill":
[record, ...], "decode": [...]}}``; a record holds every :class:`hw_models.Activity` field,
arrays as lists of integers.
"""
from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hw_models import Activity

FORMAT = "neurosim-activity"
VERSION = 1
PHASES: tuple[str, ...] = ("prefill", "decode")
def activity_to_dict(act: Activity) -> dict[str, Any]:
    """A JSON-able dict of every field of ``act`` (numpy arrays as lists)."""
    if not isinstance(act, Activity):
        raise TypeError(f"expected hw_models.Activity, got {type(act).__name__}")
    out: dict[str, Any] = {}
    for f in fields(Activity):
        v = getattr(act, f.name)
        if isinstance(v, np.ndarray):
            v = np.asarray(v, dtype=np.int64).tolist()
        elif isinstance(v, np.integer):
            v = int(v)
        out[f.name] = v
    return out


def activity_from_dict(data: Mapping[str, Any]) -> Activity:
    """Inverse of :func:`activity_to_dict`; ValueError for unknown or missing fields."""
    if not isinstance(data, Mapping):
        raise TypeError(f"an activity record must be a dict, got {type(data).__name__}")
    names = {f.name for f in fields(Activity)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"activity record has unknown field(s): {', '.join(unknown)}")
    kw = {k: (np.asarray(v, dtype=np.int64) if isinstance(v, list) else v) for k, v in data.items()}
    try:
        return Activity(**kw)
    except TypeError as e:
        raise ValueError(f"activity record is incomplete: {e}") from None


def write_activity(
    path: str | os.PathLike,
    phases: Mapping[str, Sequence[Activity] | None],
    meta: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write per-layer records by phase to ``path`` (JSON, atomically); returns the path.

    Raises ValueError for unknown phases, FileExistsError if ``path`` exists and not ``overwrite``.
    """
    from analysis.stats import atomic_output

    bad = sorted(set(phases) - set(PHASES))
    if bad:
        raise ValueError(f"unknown phase(s) {bad}; allowed: {', '.join(PHASES)}")
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "meta": dict(meta or {}),
        "phases": {p: [activity_to_dict(a) for a in acts] for p, acts in phases.items() if acts},
    }
    text = json.dumps(doc)
    with atomic_output(Path(path), overwrite=overwrite) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return Path(path)


def read_activity(path: str | os.PathLike) -> tuple[dict[str, list[Activity]], dict[str, Any]]:
    """``(phases, meta)`` of an activity file: ``phases[name]`` is the list of per-layer records.

    Raises FileNotFoundError, or ValueError for a file that is not an activity file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"activity file {p} does not exist")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{p} is not a JSON activity file ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{p} is not a neurosim activity file (format {FORMAT!r} expected)")
    if doc.get("version") != VERSION:
        raise ValueError(f"{p}: activity file version {doc.get('version')!r} is not supported (expected {VERSION})")
    phases = doc.get("phases")
    if not isinstance(phases, dict):
        raise ValueError(f"{p}: 'phases' must be a dict")
    out = {}
    for name, recs in phases.items():
        if name not in PHASES or not isinstance(recs, list):
            raise ValueError(f"{p}: phase {name!r} is not one of {', '.join(PHASES)} with a list of records")
        out[name] = [activity_from_dict(r) for r in recs]
    return out, dict(doc.get("meta") or {})
