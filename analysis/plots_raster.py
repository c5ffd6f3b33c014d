"""Spike rasters: one layer's trains over tokens and channels, and per-token rasters with text."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

import encoders

from .plot_base import NEG_COLOR, POS_COLOR, _figure
from .stats_counters import window_range
from .stats_reference import REPORT_WINDOW

def _train_by_count_sign(counts: np.ndarray, scheme: str, T: int, bit_order: str) -> tuple[np.ndarray, int]:
    """Spike train [T, *shape] with each spike signed by its count's sign, and the clipped count."""
    lo, hi = window_range(scheme, T)
    c = counts.astype(np.int64)
    clipped = int(((c < lo) | (c > hi)).sum())
    c = np.clip(c, lo, hi)
    data = np.abs(c) if encoders.get_scheme(scheme).needs_sign_split else c
    train = np.abs(encoders.encode(data, scheme, T=T, bit_order=bit_order)).astype(np.int8)
    return train * np.sign(c).astype(np.int8)[None], clipped


def _pick_channels(counts: np.ndarray, neurons: int, select: str, seed: int) -> np.ndarray:
    C = counts.shape[1]
    n = min(neurons, C)
    if select == "random":
        return np.sort(np.random.default_rng(seed).choice(C, size=n, replace=False))
    if select == "active":
        return np.sort(np.argsort(-np.count_nonzero(counts, axis=0), kind="stable")[:n])
    if select == "first":
        return np.arange(n)
    raise ValueError(f"select must be 'random', 'active' or 'first', got {select!r}")


def _window_T(counts: np.ndarray, scheme: str, T: int | None) -> int:
    if T is not None:
        return int(T)
    data = np.abs(counts) if encoders.get_scheme(scheme).needs_sign_split else counts
    return max(1, encoders.default_steps(data, scheme))


_RASTER_CMAP = ListedColormap([NEG_COLOR, "#ffffff", POS_COLOR])


def plot_raster(
    counts: Any,
    scheme: str = REPORT_WINDOW[0],
    T: int | None = REPORT_WINDOW[1],
    layer: str = "",
    tokens: int | slice = 16,
    neurons: int = 64,
    select: str = "random",
    seed: int = 0,
    bit_order: str = "msb",
    token_labels: Mapping[int, str] | Sequence[str] | None = None,
) -> Figure:
    """Spike raster of one layer: x = time (token x step), y = sampled input channels.

    Spikes are coloured by the sign of the count they carry (red positive, blue negative):
    the spike polarity for ternary / bitwise-signed, the active line for sign-split schemes,
    the value's sign for two's complement. Counts outside the T-step window are clipped
    (the title says how many); ``T=None`` uses the Int2Spike default for the shown data.

    Args:
        counts: ``[tokens, channels]`` integer counts of one layer.
        tokens: the first N tokens, or a slice of token rows.
        neurons / select / seed: how many channels, chosen ``"random"`` (seeded), the most
            ``"active"``, or the ``"first"`` ones.
        token_labels: text of the token rows of ``counts``, indexed by row (a sequence, or a
            mapping such as :func:`token_texts` returns), shown under the token indices.
    """
    c = _as_2d(counts)
    rows = slice(0, tokens) if isinstance(tokens, (int, np.integer)) else tokens
    c = c[rows]
    if c.shape[0] == 0:
        raise ValueError("no tokens selected for the raster")
    if T is not None and (isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1):
        raise ValueError(f"T must be a positive number of steps, got {T!r}")
    if isinstance(neurons, bool) or not isinstance(neurons, (int, np.integer)) or neurons < 1:
        raise ValueError(f"neurons must be a positive number of channels, got {neurons!r}")
    ch = _pick_channels(c, neurons, select, seed)
    sub = c[:, ch]
    T = _window_T(sub, scheme, T)
    train, clipped = _train_by_count_sign(sub, scheme, T, bit_order)  # [T, tok, n]
    n_tok = sub.shape[0]
    img = train.transpose(2, 1, 0).reshape(len(ch), n_tok * T)  # column = token * T + step
    width = float(np.clip(4 + 0.12 * n_tok * T, 8, 18))
    height = float(np.clip(2.2 + 0.11 * len(ch), 4, 11))
    fig = _figure(width, height)
    ax = fig.add_subplot()
    ax.imshow(img, aspect="auto", interpolation="nearest", cmap=_RASTER_CMAP, vmin=-1, vmax=1,
              extent=(0, n_tok * T, len(ch), 0))
    for b in range(1, n_tok):
        ax.axvline(b * T, color="#bbbbbb", lw=0.6)
    step = max(1, n_tok // 16)
    tick_tokens = np.arange(0, n_tok, step)
    first = rows.start or 0
    names = [str(int(t) + first) for t in tick_tokens]
    if token_labels is not None:
        names = [f"{n}\n{_short_token(token_labels[int(t) + first])}" for n, t in zip(names, tick_tokens)]
    ax.set_xticks(tick_tokens * T + T / 2, names, fontsize=8 if token_labels is not None else 10)
    if len(ch) <= 40:
        ax.set_yticks(np.arange(len(ch)) + 0.5, [str(int(i)) for i in ch], fontsize=7)
    else:
        ticks = np.arange(0, len(ch), max(1, len(ch) // 16))
        ax.set_yticks(ticks + 0.5, [str(int(ch[i])) for i in ticks], fontsize=8)
    order = ", MSB first" if encoders.get_scheme(scheme).bitwise and bit_order == "msb" else ""
    ax.set_xlabel(f"time: token index (each token = {T} steps, step 0 first{order})")
    ax.set_ylabel(f"input channel ({len(ch)} of {c.shape[1]}, {select})")
    spikes = int(np.count_nonzero(train))
    sparsity = 1 - spikes / (train.size * encoders.get_scheme(scheme).lines)
    ax.set_title(f"Spike raster {layer} - {scheme}, T = {T}\n"
                 f"{spikes} spikes, sparsity {sparsity:.1%}, {clipped} counts clipped to the window")
    _polarity_legend(fig)
    return fig


def _polarity_legend(fig: Figure) -> None:
    fig.legend(handles=[Patch(color=POS_COLOR, label="spike of a\npositive count"),
                        Patch(color=NEG_COLOR, label="spike of a\nnegative count")],
               loc="outside right upper", fontsize=8)


def plot_token_raster(
    counts: Any,
    token: int = 0,
    scheme: str = REPORT_WINDOW[0],
    T: int | None = REPORT_WINDOW[1],
    layer: str = "",
    neurons: int = 32,
    select: str = "random",
    seed: int = 0,
    bit_order: str = "msb",
    token_label: str | None = None,
) -> Figure:
    """Spike trains of one token: x = step (with its weight), y = channels, counts annotated."""
    c = _as_2d(counts)
    if not 0 <= token < c.shape[0]:
        raise ValueError(f"token {token} is outside [0, {c.shape[0]})")
    row = c[token : token + 1]
    ch = _pick_channels(row, neurons, select, seed)
    sub = row[:, ch]
    T = _window_T(sub, scheme, T)
    train, clipped = _train_by_count_sign(sub, scheme, T, bit_order)  # [T, 1, n]
    img = train[:, 0, :].T  # [n, T]
    w = encoders.step_weights(scheme, T, bit_order)
    fig = _figure(float(np.clip(5 + 0.55 * T, 8, 14)), float(np.clip(1.8 + 0.22 * len(ch), 4, 11)))
    ax = fig.add_subplot()
    ax.imshow(img, aspect="auto", interpolation="nearest", cmap=_RASTER_CMAP, vmin=-1, vmax=1,
              extent=(0, T, len(ch), 0))
    for t in range(1, T):
        ax.axvline(t, color="#dddddd", lw=0.6)
    for y in range(1, len(ch)):
        ax.axhline(y, color="#eeeeee", lw=0.4)
    ax.set_xticks(np.arange(T) + 0.5, [f"{t}\n(x{int(w[t])})" for t in range(T)], fontsize=8)
    ax.set_yticks(np.arange(len(ch)) + 0.5, [f"ch {int(i)}" for i in ch], fontsize=7)
    lo, hi = window_range(scheme, T)
    for y, v in enumerate(sub[0]):
        note = f" (sent as {int(np.clip(v, lo, hi))})" if not lo <= v <= hi else ""
        ax.text(T + 0.08, y + 0.5, f"s = {int(v)}{note}", va="center", fontsize=7, clip_on=False)
    ax.set_xlim(0, T)
    ax.set_xlabel("step (weight of the step)")
    ax.set_ylabel(f"input channel ({len(ch)} of {c.shape[1]}, {select})")
    label = f" '{token_label}'" if token_label else ""
    ax.set_title(f"One token's spike trains: token {token}{label}\n{layer} - {scheme}, T = {T}: "
                 f"{int(np.count_nonzero(train))} spikes, {clipped} counts clipped", fontsize=10)
    _polarity_legend(fig)
    return fig


def _short_token(text: str, width: int = 8) -> str:
    t = text.replace("\n", "\\n").replace("\t", "\\t").strip() or "' '"
    return t if len(t) <= width else t[: width - 1] + "~"


def token_texts(trace: Any, indices: Sequence[int]) -> dict[int, str] | None:
    """Text of the tokens ``indices`` of a trace, from its stored character offsets and prompt
    text; None when the trace stores neither."""
    offsets, texts = getattr(trace, "offsets", None), getattr(trace, "prompt_text", None)
    if offsets is None or texts is None:
        return None
    idx = np.asarray(indices, dtype=np.int64)
    prompt = np.searchsorted(np.asarray(trace.prompt_starts), idx, side="right") - 1
    out = {}
    for i, p in zip(idx.tolist(), prompt.tolist()):  # only the few tokens a figure labels
        a, b = (int(v) for v in offsets[i])
        out[i] = texts[p][a:b] if 0 <= a <= b else "?"
    return out


def _as_2d(counts: Any) -> np.ndarray:
    if hasattr(counts, "detach"):
        counts = counts.detach().cpu().numpy()
    c = np.asarray(counts)
    if c.ndim != 2 or c.dtype.kind not in "iu":
        raise ValueError(f"counts must be a 2-D integer array [tokens, channels], got {c.dtype} {c.shape}")
    return c
