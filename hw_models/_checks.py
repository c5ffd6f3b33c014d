"""Input validation shared by the hardware models: clear ValueError/TypeError naming the field."""
from __future__ import annotations

import math
from dataclasses import MISSING, fields
from typing import Any, Mapping

from .activity import Activity


def finite_nonneg(owner: str, name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite number >= 0, else raise naming ``owner.name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: field {name!r} must be a number, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        raise ValueError(f"{owner}: field {name!r} must be finite, got {value!r}")
    if v < 0:
        raise ValueError(f"{owner}: field {name!r} must be >= 0, got {value!r}")
    return v


def positive(owner: str, name: str, value: Any) -> float:
    """Like :func:`finite_nonneg` but the value must be > 0."""
    v = finite_nonneg(owner, name, value)
    if v <= 0:
        raise ValueError(f"{owner}: field {name!r} must be > 0, got {value!r}")
    return v


def positive_int(owner: str, name: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 1 (bool rejected), else raise naming the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: field {name!r} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{owner}: field {name!r} must be >= 1, got {value}")
    return value


def fraction(owner: str, name: str, value: Any) -> float:
    """A finite number in [0, 1]."""
    v = finite_nonneg(owner, name, value)
    if v > 1:
        raise ValueError(f"{owner}: field {name!r} must be <= 1, got {value!r}")
    return v


def dataclass_kwargs(cls: type, data: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Check a dict against dataclass ``cls``: all required fields present, no unknown keys."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{owner}: expected a dict, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    required = {f.name for f in fields(cls) if _is_required(f)}
    missing = sorted(required - set(data))
    if missing:
        raise ValueError(f"{owner}: missing required field(s): {', '.join(missing)}")
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{owner}: unknown field(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return dict(data)


def _is_required(f: Any) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def check_layer_activity(act: Activity, where: str = "activity") -> None:
    """A per-layer Activity: positive shape, tokens and steps, non-negative counts."""
    if not isinstance(act, Activity):
        raise TypeError(f"{where}: expected hw_models.Activity, got {type(act).__name__}")
    label = f"{where} {act.name!r}"
    if act.in_features < 1 or act.out_features < 1:
        raise ValueError(
            f"{label}: hardware models need per-layer records with in_features/out_features >= 1 "
            f"(got {act.in_features}x{act.out_features}); pass the layer records, not a sum"
        )
    if act.tokens < 1:
        raise ValueError(f"{label}: tokens must be >= 1, got {act.tokens}")
    if act.steps < 1:
        raise ValueError(f"{label}: steps must be >= 1, got {act.steps}")
    if act.bytes_per_weight < 1:
        raise ValueError(f"{label}: bytes_per_weight must be >= 1, got {act.bytes_per_weight}")
    if act.block_columns < 1:
        raise ValueError(f"{label}: block_columns must be >= 1, got {act.block_columns}")
    if not 0 <= int(act.mac_ops) <= int(act.synaptic_ops):
        raise ValueError(f"{label}: mac_ops must lie in [0, synaptic_ops], got {act.mac_ops}")
    for name in ("synaptic_ops", "acc_updates", "dense_macs", "silent_inputs",
                 "weight_bytes_touched", "weight_bytes_dense"):
        if int(getattr(act, name)) < 0:
            raise ValueError(f"{label}: {name} must be >= 0, got {getattr(act, name)}")
    if act.events < 0:
        raise ValueError(f"{label}: events_per_step must be >= 0")
