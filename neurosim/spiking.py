"""Spiking forward mode and its quality cost (perplexity of float vs spiking model).

In spiking mode every hooked nn.Linear computes from its input's spike counts instead of
the float input: ``y = W @ (V_th * s)`` (= ``V_th * W @ s``), with ``s = round(x / V_th)`` and
``V_th = mean|x| / k`` per token (SpikingBrain report, arXiv:2509.05276,
eqs. 19-23). Optionally the counts are clamped to what ``T`` steps of an encoder scheme can
carry, and the weights replaced by symmetric INT8 with per-group-128 scales as in the
released W8ASpike checkpoint (:func:`neurosim.weights.quantize_int8`).
"""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

import encoders

from .capture import linear_layers, tokenize
from .models import LoadedModel
from .weights import quantize_int8

K_SWEEP: tuple[float, ...] = (2.0, 2.5, 3.0, 3.5, 4.0)  # report Table 11 k values
CLIP_SWEEP: tuple[tuple[str, int] | None, ...] = (None, (encoders.DEFAULT_SCHEME, 3), (encoders.DEFAULT_SCHEME, 4))
_SPIKING_KEYS = frozenset({"k", "clip", "int8_weights", "include_lm_head"})


@dataclass
class SpikingStats:
    """What a spiking-mode run did. ``values``: activations turned into counts; ``clipped``:
    counts clamped to the scheme's range; ``calls``: linear-layer calls."""

    calls: int = 0
    values: int = 0
    clipped: int = 0

    @property
    def clipped_fraction(self) -> float:
        return self.clipped / self.values if self.values else 0.0


def _check_clip(clip: Any) -> tuple[str, int] | None:
    if clip is None:
        return None
    if not (isinstance(clip, (tuple, list)) and len(clip) == 2):
        raise TypeError(f"clip must be None or a pair (scheme, T), got {clip!r}")
    scheme, T = clip
    if not isinstance(T, (int, np.integer)) or isinstance(T, bool) or T < 1:
        raise ValueError(f"clip T must be a positive int, got {T!r}")
    encoders.count_range(scheme, int(T))  # validates the scheme name
    return str(scheme), int(T)


@contextlib.contextmanager
def spiking_mode(
    model: torch.nn.Module,
    *,
    k: float = 3.0,
    clip: tuple[str, int] | None = None,
    int8_weights: bool = False,
    include_lm_head: bool = True,
) -> Iterator[SpikingStats]:
    """Make every nn.Linear of ``model`` compute from spike counts; restore the model on exit.

    Args:
        model: a torch module (float32 or bfloat16, any device).
        k: threshold divisor, ``V_th = mean|x| / k`` per token.
        clip: ``(scheme, T)``: clamp counts to what ``T`` steps of ``scheme`` carry, e.g.
            ``("bitwise-signed", 3)`` -> [-7, 7].
        int8_weights: use W8ASpike-style symmetric INT8 weights (per-group-128 scales),
            dequantized, instead of the float weights.
        include_lm_head: also spike the output head (default: every nn.Linear).

    Yields:
        :class:`SpikingStats`, updated as the model runs.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(k, (int, float, np.integer, np.floating)) or isinstance(k, bool) or not np.isfinite(k) or k <= 0:
        raise ValueError(f"k must be a positive finite number, got {k!r}")
    clip = _check_clip(clip)
    layers = linear_layers(model, include_lm_head)
    stats = SpikingStats()
    kf = float(k)

    def pre_hook(module: torch.nn.Module, args: tuple) -> tuple:
        x = args[0]
        sc = encoders.spike_counts(x, kf, clip=clip)
        xq = (sc.counts.to(torch.float32) * sc.vth.unsqueeze(-1)).to(x.dtype)
        stats.calls += 1
        stats.values += x.numel()
        stats.clipped += sc.n_clipped
        return (xq,) + tuple(args[1:])

    handles: list[Any] = []
    swapped: list[tuple[torch.nn.Linear, torch.nn.Parameter]] = []
    try:
        if int8_weights:
            with torch.no_grad():
                for _, mod in layers:
                    orig = mod.weight
                    deq = quantize_int8(orig.detach()).dequantize().to(dtype=orig.dtype, device=orig.device)
                    mod.weight = torch.nn.Parameter(deq, requires_grad=False)  # tied weights stay untouched
                    swapped.append((mod, orig))
        for _, mod in layers:
            handles.append(mod.register_forward_pre_hook(pre_hook))
        yield stats
    finally:
        for h in handles:
            h.remove()
        for mod, orig in swapped:
            mod.weight = orig


def _read_text(text: str | os.PathLike) -> str:
    if isinstance(text, os.PathLike):
        path = Path(text)
        if not path.is_file():
            raise FileNotFoundError(f"text file {path} does not exist")
        return path.read_text(encoding="utf-8")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str or os.PathLike, got {type(text).__name__}")
    return text


def _nll(
    loaded: LoadedModel, ids: torch.Tensor, window: int, stride: int
) -> tuple[float, int]:
    """Summed next-token negative log-likelihood (nats) and number of scored tokens.

    Sliding windows of ``window`` tokens advancing by ``stride``; each token is scored once,
    with up to ``window - 1`` tokens of context.
    """
    n = ids.shape[0]
    total, scored, prev_end = 0.0, 0, 0
    model = loaded.model
    for begin in range(0, n, stride):  # loop over windows
        end = min(begin + window, n)
        first = max(prev_end, begin + 1)  # first target position scored in this window
        if first < end:
            logits = model(input_ids=ids[begin:end].unsqueeze(0).to(loaded.device), use_cache=False).logits[0]
            pred = logits[first - 1 - begin : end - 1 - begin].float()
            target = ids[first:end].to(pred.device)
            total += float(F.cross_entropy(pred, target, reduction="sum"))
            scored += end - first
        prev_end = end
        if end == n:
            break
    return total, scored


def perplexity(
    loaded: LoadedModel,
    text: str | os.PathLike,
    *,
    spiking: dict[str, Any] | None = None,
    max_tokens: int = 512,
    window: int | None = None,
    stride: int | None = None,
) -> float:
    """Perplexity (exp of mean next-token NLL) of ``loaded`` on the first ``max_tokens`` tokens.

    Args:
        text: the text, or a UTF-8 text file.
        spiking: ``None`` for the float model, else keyword arguments of :func:`spiking_mode`
            (``k``, ``clip``, ``int8_weights``, ``include_lm_head``).
        window: tokens per forward pass (default: all ``max_tokens``, capped at the context).
        stride: tokens the window advances (default ``window``: non-overlapping windows).
    """
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"loaded must be a neurosim.models.LoadedModel, got {type(loaded).__name__}")
    if spiking is not None:
        if not isinstance(spiking, dict):
            raise TypeError(f"spiking must be None or a dict of spiking_mode arguments, got {type(spiking).__name__}")
        unknown = sorted(set(spiking) - _SPIKING_KEYS)
        if unknown:
            raise ValueError(f"unknown spiking options {unknown}; allowed: {sorted(_SPIKING_KEYS)}")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 2:
        raise ValueError(f"max_tokens must be an int >= 2, got {max_tokens!r}")
    body = _read_text(text)
    ids_np, _ = tokenize(loaded, body)
    ids = torch.from_numpy(ids_np[:max_tokens])
    n = ids.shape[0]
    if n < 2:
        raise ValueError(f"the text has {n} token(s); perplexity needs at least 2")
    window = min(n, loaded.max_positions) if window is None else window
    if not isinstance(window, int) or isinstance(window, bool) or not 2 <= window <= loaded.max_positions:
        raise ValueError(f"window must be an int in [2, {loaded.max_positions}] (the context), got {window!r}")
    stride = window if stride is None else stride
    if not isinstance(stride, int) or isinstance(stride, bool) or not 1 <= stride <= window:
        raise ValueError(f"stride must be an int in [1, window={window}], got {stride!r}")
    ctx = spiking_mode(loaded.model, **spiking) if spiking is not None else contextlib.nullcontext()
    with torch.inference_mode(), ctx:
        total, scored = _nll(loaded, ids, window, stride)
    return math.exp(total / scored)


def perplexity_sweep(
    loaded: LoadedModel,
    text: str | os.PathLike,
    *,
    ks: Sequence[float] = K_SWEEP,
    clips: Sequence[tuple[str, int] | None] = CLIP_SWEEP,
    int8_weights: Sequence[bool] = (False,),
    include_lm_head: bool = True,
    max_tokens: int = 512,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Float vs spiking perplexity for every (k, clip, int8_weights) combination.

    Returns one dict per combination with keys ``k``, ``scheme``, ``T`` (None: no clip),
    ``int8_weights``, ``ppl_float``, ``ppl_spiking``, ``ratio`` (spiking / float) and
    ``clipped_fraction`` (share of counts clamped by the T budget).
    """
    from tqdm import tqdm

    clips = [_check_clip(c) for c in clips]
    body = _read_text(text)
    ppl_float = perplexity(loaded, body, max_tokens=max_tokens)
    combos = [(k, c, w) for w in int8_weights for c in clips for k in ks]
    rows = []
    for k, c, w in tqdm(combos, desc="perplexity sweep", disable=None if progress else True):
        opts = {"k": k, "clip": c, "int8_weights": bool(w), "include_lm_head": include_lm_head}
        with spiking_mode(loaded.model, **opts) as stats:  # clip rate from the same pass
            ppl = perplexity(loaded, body, max_tokens=max_tokens)
        rows.append(
            {
                "k": float(k),
                "scheme": None if c is None else c[0],
                "T": None if c is None else c[1],
                "int8_weights": bool(w),
                "ppl_float": ppl_float,
                "ppl_spiking": ppl,
                "ratio": ppl / ppl_float,
                "clipped_fraction": stats.clipped_fraction,
            }
        )
    return rows
