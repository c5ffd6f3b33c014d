"""Closed-loop spiking generation: every nn.Linear of a causal LM runs on the spike simulator.

With ``engine="events"`` each linear layer turns its input into integer spike counts exactly
as capture does (:func:`neurosim.capture.counts_int16`: ``V_th = mean|x| / k`` per token,
``s = round(x / V_th)``; report eqs. 19-23), sends them as spike trains of ``scheme`` over
``T`` steps (counts clamped to the window, as in the report's [-7, 7] for its bitwise
ternary code, T = 3) and computes its output with the event-driven replay (:func:`neurosim.sim.replay_layer`)
through W8ASpike INT8 weights: ``y = V_th * sum_g scale_g * acc_g``. Prefill and decode (with
the model's KV cache) both run this way, so the generated text is the spiking model's own.
``engine="dense"`` runs the same integer arithmetic as dense per-step matrix products (the
replay guarantees identical accumulators, hence identical tokens); ``"float"`` is the plain
model. :func:`neurosim.spiking.spiking_mode` is the float-arithmetic twin of the spiking
engines (same counts, clip and INT8 weights, float matmul): it is used as a cross-check.

Every layer's :class:`hw_models.Activity` is summed over the generation, prefill and decode
separately, so the hardware models can price real decode (:mod:`neurosim.activity_file`).
"""
from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Iterator

import numpy as np
import torch

import encoders
from hw_models import Activity

from .capture import counts_int16, linear_layers, output_head, role_of
from .models import LoadedModel
from .sim import prepare_weight, replay_layer
from .weights import quantize_int8

ENGINES: tuple[str, ...] = ("events", "dense", "float")
_UNSIGNED = frozenset(s for s in encoders.SCHEMES if s not in encoders.SIGNED)
_PER_TOKEN_FIELDS = frozenset({"events_per_token", "synops_per_token"})
_SAME_FIELDS = frozenset({"steps", "in_features", "out_features", "block_columns", "bytes_per_weight"})


def default_T(scheme: str) -> int:
    """The analysis budget of ``scheme`` (the default scheme: 3 steps, range [-7, 7])."""
    from analysis.stats import DEFAULT_BUDGETS

    encoders.check_scheme(scheme)
    return int(DEFAULT_BUDGETS[scheme])


def concat_tokens(acts: list[Activity]) -> Activity:
    """One Activity of a layer over the tokens of several records (in order).

    Per-token arrays are concatenated, per-step arrays and totals summed; shapes, window and
    layout must agree. ``weight_bytes_dense`` is summed too: a dense engine reads the
    weights once per call, i.e. once per decode step. Raises ValueError for an empty list or records of different layers.
    """
    if not acts:
        raise ValueError("concat_tokens: no records")
    first = acts[0]
    if len(acts) == 1:
        return first
    for a in acts[1:]:
        if (a.name, a.in_features, a.out_features, a.steps) != (first.name, first.in_features, first.out_features, first.steps):
            raise ValueError(f"concat_tokens: records of {first.name!r} and {a.name!r} differ in layer or window")
    out: dict[str, Any] = {}
    for f in fields(Activity):
        vals = [getattr(a, f.name) for a in acts]
        v0 = vals[0]
        if f.name == "synops_per_token":
            out[f.name] = np.concatenate([a.synaptic_ops_per_token for a in acts]).astype(np.int64)
        elif f.name in _PER_TOKEN_FIELDS:
            out[f.name] = np.concatenate([np.asarray(v, dtype=np.int64) for v in vals])
        elif isinstance(v0, np.ndarray):
            n = max(len(v) for v in vals)
            acc = np.zeros(n, dtype=np.int64)
            for v in vals:
                acc[: len(v)] += np.asarray(v, dtype=np.int64)
            out[f.name] = acc
        elif isinstance(v0, (int, np.integer)) and not isinstance(v0, bool) and f.name not in _SAME_FIELDS:
            out[f.name] = int(sum(int(v) for v in vals))
        else:
            out[f.name] = v0
    return replace(first, **out)


@dataclass
class SpikingLinears:
    """State of :func:`spiking_linears`: per-layer Activity records, by phase, as the model runs."""

    scheme: str
    T: int
    engine: str
    phase: str = "prefill"
    records: dict[str, dict[str, list[Activity]]] = field(default_factory=lambda: {"prefill": {}, "decode": {}})
    clipped: dict[str, int] = field(default_factory=lambda: {"prefill": 0, "decode": 0})
    calls: int = 0

    def activities(self, phase: str) -> list[Activity]:
        """Per-layer Activity of ``phase`` summed over its tokens, in model order."""
        return [concat_tokens(v) for v in self.records[phase].values()]


@contextlib.contextmanager
def spiking_linears(
    model: torch.nn.Module,
    scheme: str = encoders.DEFAULT_SCHEME,
    T: int | None = None,
    *,
    k: float = 3.0,
    engine: str = "events",
    include_lm_head: bool = True,
    device: str | torch.device | None = None,
) -> Iterator[SpikingLinears]:
    """Make every nn.Linear of ``model`` compute with the spike simulator; restore it on exit.

    Args:
        scheme, T: spike code and window (default: the scheme's budget); counts outside the
            window are clamped (counted in ``clipped``); unsigned schemes carry the sign on
            a second line (``sign_split``).
        k: threshold divisor, ``V_th = mean|x| / k`` per token.
        engine: ``"events"`` (event-driven replay) or ``"dense"`` (same integer arithmetic,
            dense per-step products).
        include_lm_head: also run the output head on spikes.
        device: where the replay runs (default: the model's device).

    Yields a :class:`SpikingLinears`; set its ``phase`` ("prefill" or "decode") to file the
    Activity records of the following calls.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if engine not in ("events", "dense"):
        raise ValueError(f"engine must be 'events' or 'dense' for spiking layers, got {engine!r}")
    encoders.check_scheme(scheme)
    T = default_T(scheme) if T is None else T
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not np.isfinite(k) or k <= 0:
        raise ValueError(f"k must be a positive finite number, got {k!r}")
    layers = linear_layers(model, include_lm_head)
    if not layers:
        raise ValueError("the model has no nn.Linear layers")
    head = output_head(model)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    state = SpikingLinears(scheme, int(T), engine)
    sign_split = scheme in _UNSIGNED
    last: dict[str, Any] = {"x": None}  # q/k/v (gate/up) receive the same input tensor

    def make_forward(name: str, mod: torch.nn.Linear, op: Any):
        role = "lm_head" if mod is head else role_of(name)

        def forward(x: torch.Tensor) -> torch.Tensor:
            rows = x.numel() // x.shape[-1]
            if last["x"] is x:
                counts, vth, share = last["counts"], last["vth"], last["name"]
            else:
                counts, vth = counts_int16(x.reshape(rows, x.shape[-1]), k)
                share = None
                last.update(x=x, counts=counts, vth=vth, name=name)
            r = replay_layer(
                mod.weight, counts, vth, scheme, int(T), clip=True, sign_split=sign_split, engine=engine,
                device=dev, name=name, role=role, operand=op, same_input_as=share,
            )
            recs = state.records[state.phase].setdefault(name, [])
            recs.append(r.activity)
            state.clipped[state.phase] += int(r.clipped)
            state.calls += 1
            y = r.output.to(x.dtype)
            if mod.bias is not None:
                y = y + mod.bias
            return y.reshape(*x.shape[:-1], mod.out_features)

        return forward

    patched: list[torch.nn.Linear] = []
    try:
        with torch.no_grad():
            ops = {id(mod): prepare_weight(quantize_int8(mod.weight.detach()), dev, need_tables=engine == "events")
                   for _, mod in layers}
        for name, mod in layers:
            mod.forward = make_forward(name, mod, ops[id(mod)])  # instance attribute shadows the class method
            patched.append(mod)
        yield state
    finally:
        for mod in patched:
            del mod.forward
        last.clear()


@dataclass
class Generation:
    """Result of :func:`generate`.

    Attributes:
        prompt, text: the prompt and the generated continuation.
        new_ids: generated token ids.
        engine, scheme, T, k: how it ran (scheme/T unused for ``float``).
        prompt_tokens: prompt length in tokens.
        prefill_s, decode_s: wall time of the prefill pass (it yields the first new token)
            and of the remaining decode steps (s).
        prefill, decode: per-layer Activity summed over the prefill tokens and over the
            decode steps (None for ``float``).
        clipped: counts clamped to the window, per phase.
    """

    prompt: str
    text: str
    new_ids: list[int]
    engine: str
    scheme: str
    T: int
    k: float
    prompt_tokens: int
    prefill_s: float
    decode_s: float
    prefill: list[Activity] | None = None
    decode: list[Activity] | None = None
    clipped: dict[str, int] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        """New tokens per second of wall time, prefill included."""
        t = self.prefill_s + self.decode_s
        return len(self.new_ids) / t if t > 0 else float("inf")

    @property
    def decode_tokens_per_s(self) -> float:
        """Decode steps per second (tokens after the first), or nan with one new token."""
        n = len(self.new_ids) - 1
        return n / self.decode_s if n > 0 and self.decode_s > 0 else float("nan")


def _cache(model: torch.nn.Module) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers < 4.56
        return DynamicCache()


def _step(model: torch.nn.Module, ids: torch.Tensor, cache: Any) -> torch.Tensor:
    """Logits of the last position after feeding ``ids`` [1, n] with the KV cache."""
    params = inspect.signature(model.forward).parameters
    kw: dict[str, Any] = {"cache": cache} if "cache" in params else {"past_key_values": cache}
    # The head runs on every prompt position (as capture with the head records it), so every
    # layer's prefill record covers the same tokens, as the hardware models require.
    return model(input_ids=ids, use_cache=True, **kw).logits[0, -1]


def generate(
    loaded: LoadedModel,
    prompt: str,
    max_new_tokens: int = 16,
    *,
    engine: str = "events",
    scheme: str = encoders.DEFAULT_SCHEME,
    T: int | None = None,
    k: float = 3.0,
    stop_at_eos: bool = True,
) -> Generation:
    """Greedy generation with every linear layer spiking (``events``/``dense``) or plain (``float``).

    Raises ValueError for an empty prompt, ``max_new_tokens < 1``, an unknown engine or
    scheme, or a prompt longer than the context minus ``max_new_tokens``.
    """
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"loaded must be a neurosim.models.LoadedModel, got {type(loaded).__name__}")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    encoders.check_scheme(scheme)
    T = default_T(scheme) if T is None else T
    model, tok = loaded.model, loaded.tokenizer
    ids = torch.as_tensor(tok(prompt)["input_ids"], dtype=torch.long).reshape(1, -1).to(loaded.device)
    if ids.shape[1] + max_new_tokens > loaded.max_positions:
        raise ValueError(f"prompt ({ids.shape[1]} tokens) + max_new_tokens exceeds the context of {loaded.max_positions}")
    eos = getattr(tok, "eos_token_id", None) if stop_at_eos else None
    ctx = (spiking_linears(model, scheme, T, k=k, engine=engine) if engine != "float"
           else contextlib.nullcontext(None))
    new: list[int] = []
    with torch.inference_mode(), ctx as state:
        cache = _cache(model)
        t0 = time.perf_counter()
        nxt = int(torch.argmax(_step(model, ids, cache)))
        t1 = time.perf_counter()
        new.append(nxt)
        if state is not None:
            state.phase = "decode"
        while len(new) < max_new_tokens and nxt != eos:  # autoregressive: one step per token
            nxt = int(torch.argmax(_step(model, torch.tensor([[nxt]], device=ids.device), cache)))
            new.append(nxt)
        t2 = time.perf_counter()
        acts = {p: (state.activities(p) or None) for p in ("prefill", "decode")} if state is not None else {}
        clipped = dict(state.clipped) if state is not None else {}
    return Generation(
        prompt=prompt, text=tok.decode(new, skip_special_tokens=True), new_ids=new, engine=engine, scheme=scheme,
        T=int(T), k=float(k), prompt_tokens=int(ids.shape[1]), prefill_s=t1 - t0, decode_s=t2 - t1,
        prefill=acts.get("prefill"), decode=acts.get("decode"), clipped=clipped,
    )
