"""HDF5 layout of spike statistics: the ``/stats`` group of a trace or of a stats file."""
from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import h5py
import numpy as np

from .stats_counters import (
    EXACT_MAX,
    FRACTION_BINS,
    STATS_SCHEMA_VERSION,
    VTH_BINS_PER_DECADE,
    VTH_FIXED_SHIFT,
    VTH_LOG10_MAX,
    VTH_LOG10_MIN,
    CountState,
    LayerStats,
)
from .stats_reference import DEFINITIONS


def stats_to_hdf5(stats: Any, group: Any) -> None:
    """Write into an open, writable h5py group (its existing content is replaced).

    Layout: ``layers/`` holds one row per layer (trace order) in stacked datasets
    (``hist`` [layers, 2*exact_max+1], ...; ``channel_active`` concatenated with
    ``channel_offsets``), each with ``units`` and ``definition`` attributes;
    ``layer_table`` is the per-layer summary as a table; ``model`` and ``roles/<role>``
    carry their summaries as attributes.
    """
    for key in list(group.keys()):
        del group[key]
    for key in list(group.attrs.keys()):
        del group.attrs[key]
    a = group.attrs
    a["stats_schema_version"] = STATS_SCHEMA_VERSION
    a["window_scheme"], a["window_steps"] = stats.window
    a["delta"] = bool(getattr(stats, "delta", False))
    a["exact_max"] = EXACT_MAX
    a["fraction_bins"] = FRACTION_BINS
    a["vth_log10_range"] = np.array([VTH_LOG10_MIN, VTH_LOG10_MAX])
    a["vth_bins_per_decade"] = VTH_BINS_PER_DECADE
    a["definitions"] = json.dumps(DEFINITIONS, indent=1)
    a["source"] = "SpikingBrain technical report, arXiv:2509.05276 (statistics of SpikingBrain-7B)"
    layers = stats.ordered_layers()
    g = group.create_group("layers")
    text = h5py.string_dtype("utf-8")

    def put(name: str, data: Any, units: str, definition: str, **kw: Any) -> None:
        d = g.create_dataset(name, data=data, **kw)
        d.attrs["units"], d.attrs["definition"] = units, definition

    put("name", [ls.name for ls in layers], "", "layer (module) name", dtype=text)
    put("role", [ls.role for ls in layers], "", "q, k, v, o, gate, up, down, lm_head or other", dtype=text)
    for key, definition in (
        ("index", "position in model order (-1: unknown)"),
        ("channels", "input channels"),
        ("in_features", "layer fan-in (0: unknown)"),
        ("out_features", "layer fan-out (0: unknown)"),
    ):
        put(key, np.array([getattr(ls, key) for ls in layers], np.int64), "", definition)
    for key, (units, definition) in _STATE_UNITS.items():
        stacked = np.stack([getattr(ls.state, key) for ls in layers]) if layers else np.zeros((0, 1), np.int64)
        put(key, stacked, units, definition, compression="gzip")
    put("scalars", [_state_json(ls.state) for ls in layers], "JSON",
        f"exact counters per layer (rows, values, lo, hi, vth_fixed in 2**-{VTH_FIXED_SHIFT} V_th units, ...)",
        dtype=text)
    offsets = np.concatenate([[0], np.cumsum([ls.channels for ls in layers], dtype=np.int64)]).astype(np.int64)
    put("channel_offsets", offsets, "channels", "layer i's channels are channel_active[offsets[i]:offsets[i+1]]")
    active = np.concatenate([ls.channel_active for ls in layers]) if layers else np.zeros(0, np.int64)
    put("channel_active", active, "tokens", "tokens with s != 0, per input channel", compression="gzip")
    rows = stats.layer_table()
    if rows:
        cols = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        dt = np.dtype([("name", text), ("role", text)] + [(k, np.float64) for k in cols])
        table = np.array([tuple([r["name"], r["role"]] + [float(r[k]) for k in cols]) for r in rows], dtype=dt)
        d = group.create_dataset("layer_table", data=table)
        d.attrs["units"] = "fractions in [0, 1]; vth_* in activation units; counts as numbers"
        d.attrs["definition"] = "summary() of every layer, trace order (derived; not read back)"
    _write_summary(group.create_group("model").attrs, stats.summary("model"))
    roles = group.create_group("roles")
    for r in stats.roles:
        _write_summary(roles.create_group(r).attrs, stats.summary(r))



def stats_from_hdf5(cls: type, group: Any) -> Any:
    """Read what :meth:`to_hdf5` wrote (exactly; derived summaries are recomputed, not read)."""
    a = group.attrs
    if "stats_schema_version" not in a:
        raise ValueError(f"HDF5 group {group.name!r} holds no spike statistics (no stats_schema_version)")
    ver = int(a["stats_schema_version"])
    if ver > STATS_SCHEMA_VERSION:
        raise ValueError(
            f"statistics schema {ver} is newer than this reader ({STATS_SCHEMA_VERSION}); upgrade neurosim"
        )
    if int(a["exact_max"]) != EXACT_MAX or int(a["fraction_bins"]) != FRACTION_BINS:
        raise ValueError("statistics were written with different histogram bins; they cannot be read exactly")
    out = cls((_s(a["window_scheme"]), int(a["window_steps"])), delta=bool(a.get("delta", False)))
    g = group["layers"]
    try:
        cols = {key: g[key][()] for key in ("name", "role", "index", "channels", "in_features", "out_features",
                                            "scalars", "channel_offsets", "channel_active", *_STATE_UNITS)
                if key in g or key not in _OPTIONAL_STATE}
    except KeyError as e:
        raise ValueError(f"HDF5 group {group.name!r}: incomplete statistics ({e})") from None
    off = cols["channel_offsets"]
    for i in range(len(cols["name"])):  # loop over layers
        st = _read_state_json(_s(cols["scalars"][i]))
        for key in _STATE_UNITS:
            if key in cols:
                setattr(st, key, np.asarray(cols[key][i], np.int64))
        ls = LayerStats(_s(cols["name"][i]), _s(cols["role"][i]), int(cols["channels"][i]), int(cols["index"][i]),
                        int(cols["in_features"][i]), int(cols["out_features"][i]), st,
                        np.asarray(cols["channel_active"][off[i] : off[i + 1]], np.int64))
        out.layers[ls.name] = ls
    return out


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


_STATE_UNITS = {
    "hist": ("values", "count of values s in [-exact_max, exact_max], column s + exact_max"),
    "over_pos": ("values", "values s > exact_max by bit length of s"),
    "over_neg": ("values", "values s < -exact_max by bit length of |s|"),
    "over_neg_twos": ("values", "values s < -exact_max by bit length of -s-1"),
    "token_silence_hist": ("tokens", "per-token silence fraction, bin i = [i/100, (i+1)/100)"),
    "token_sparsity_hist": ("tokens", "per-token sparsity in the window, bin i = [i/100, (i+1)/100)"),
    "vth_hist": ("tokens", "V_th in log10 bins: [under, 10**(-6 + i/20) .. , over]"),
    "over_naf_len": ("values", "values |s| > exact_max by non-adjacent-form length of |s|"),
}
_OPTIONAL_STATE = ("over_naf_len",)  # absent in statistics written before bitwise-naf: read as zeros
_BIG_INTS = ("vth_fixed", "over_sum_abs", "over_pop_pos", "over_pop_neg", "over_pop_negm1", "over_pop_naf")  # may exceed int64


def _state_json(st: CountState) -> str:
    scal = {f.name: getattr(st, f.name) for f in fields(st) if f.name not in _STATE_UNITS}
    for key in _BIG_INTS:
        scal[key] = str(scal[key])
    return json.dumps(scal)


def _read_state_json(text: str) -> CountState:
    st = CountState()
    for key, val in json.loads(text).items():
        setattr(st, key, int(val) if key in _BIG_INTS else val)
    return st


def _write_summary(attrs: Any, summary: dict[str, Any]) -> None:
    for key, val in summary.items():
        attrs[key] = val
    attrs["fraction_units"] = "fractions in [0, 1]; vth_* in activation units"
