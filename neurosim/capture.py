"""Capture per-token spike counts of every nn.Linear input of a real causal LM into an HDF5 trace.

Each hooked layer's input ``x`` (one vector per token) is turned into integer spike counts
with :func:`encoders.spike_counts` (``V_th = mean|x| / k``, ``s = round(x / V_th)``; report
eqs. 19-23, arXiv:2509.05276) inside a forward pre-hook, on the model's device, and the
counts are handed through a bounded host ring (:mod:`neurosim.capture_stage`; page-locked and
filled by asynchronous copies on CUDA) to a writer thread
(:class:`analysis.trace_async.AsyncTraceWriter`) that compresses and writes them. Long prompts run
in chunks of ``chunk_tokens`` tokens with the model's KV cache, so memory holds one chunk's
activations (plus the cache), never all layers' activations for the whole input.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import encoders
from analysis.roles import role_of  # noqa: F401  (re-exported: the one role detector)
from analysis.trace import LayerInfo, SpikeTrace, TraceWriter
from analysis.trace_async import AsyncTraceWriter

from .capture_stage import I16_MAX, I16_MIN, HostRing, check_status, counts_device, div_round_into, int16_range_message
from .models import LoadedModel

@dataclass
class _Prompt:
    text: str
    ids: np.ndarray  # int64 [n]
    offsets: np.ndarray | None  # int64 [n, 2]


def _read_prompts(prompts: Any) -> list[str]:
    if isinstance(prompts, (str, os.PathLike)):
        items: Sequence[Any] = [prompts]
    elif isinstance(prompts, (list, tuple)):
        items = prompts
    else:
        raise TypeError(f"prompts must be a str, a path or a list of them, got {type(prompts).__name__}")
    if not items:
        raise ValueError("prompts is empty: give at least one prompt")
    texts = []
    for i, item in enumerate(items):
        if isinstance(item, os.PathLike):
            path = Path(item)
            if not path.is_file():
                raise FileNotFoundError(f"prompt file {path} does not exist")
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"prompt file {path} is not UTF-8 text ({e})") from None
        elif isinstance(item, str):
            text = item
        else:
            raise TypeError(f"prompt {i} must be a str or os.PathLike, got {type(item).__name__}")
        if not text.strip():
            raise ValueError(f"prompt {i} is empty")
        texts.append(text)
    return texts


def tokenize(loaded: LoadedModel, text: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Token ids (int64 [n]) of ``text`` and their character spans ([n, 2], or None if the
    tokenizer cannot report offsets)."""
    tok = loaded.tokenizer
    try:
        enc = tok(text, return_offsets_mapping=True)
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    except (NotImplementedError, TypeError, ValueError, KeyError):
        enc, offsets = tok(text), None
    return np.asarray(enc["input_ids"], dtype=np.int64).reshape(-1), offsets


def output_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The model's output projection (``get_output_embeddings()``, else a module named lm_head)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        head = dict(model.named_modules()).get("lm_head")
    return head


def linear_layers(model: torch.nn.Module, include_lm_head: bool) -> list[tuple[str, torch.nn.Linear]]:
    """``(name, module)`` of every nn.Linear in model order; the output head only if asked."""
    head = output_head(model)
    return [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.Linear) and (include_lm_head or mod is not head)
    ]


def counts_int16(
    x: torch.Tensor, k: float, *, work: torch.Tensor | None = None, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike counts of ``x`` [rows, C] as int16 and V_th [rows] (float32), on x's device.

    The same arithmetic as :func:`encoders.spike_counts` (bit-identical results: abs, mean,
    divide by k, clamp, divide, round) in fewer passes and without fresh allocations when
    ``work`` (float32 [rows, C]) and ``out`` (int16 [rows, C]) buffers are given: the
    finiteness check uses the per-row mean (NaN/inf in a row make its mean non-finite) and
    the int16 range check is skipped when it cannot fail (|s| <= k * C unless V_th hit its
    upper clamp).

    Raises ValueError for NaN/inf activations or counts outside int16.
    """
    xf = x.float()
    a = torch.abs(xf, out=work) if work is not None else xf.abs()
    mean = a.mean(dim=-1, keepdim=True)
    if not bool(torch.isfinite(mean).all()):
        raise ValueError("activations contain NaN or inf; spike counts are undefined")
    vth = (mean / float(k)).clamp_(encoders.VTH_MIN, encoders.VTH_MAX)
    check = float(k) * x.shape[-1] >= I16_MAX or bool((vth >= encoders.VTH_MAX).any())
    if out is not None and not check and div_round_into(xf, vth, out):  # CPU: one serial pass
        return out, vth.squeeze(-1)
    s = torch.div(xf, vth, out=a)  # reuse the |x| buffer
    s.round_()
    if check:
        lo, hi = (float(v) for v in torch.aminmax(s))
        if lo < I16_MIN or hi > I16_MAX:
            raise ValueError(int16_range_message(lo, hi, bool((vth >= encoders.VTH_MAX).any())))
    if out is None:
        return s.to(torch.int16), vth.squeeze(-1)
    out.copy_(s)  # integral values: the float -> int16 cast is exact
    return out, vth.squeeze(-1)


_RING_CPU = 32 << 20  # bytes of host staging on the CPU (filled, then written while the forward waits)
_RING_CUDA = 512 << 20  # page-locked bytes on CUDA: room for the forward to run ahead of the writer
_TRIM_AFTER_TOKENS = 1024  # return freed heap to the OS after chunks past this position


def _load_malloc_trim() -> Any:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _load_malloc_trim()


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``; no-op elsewhere).

    The KV cache grows by reallocation every chunk; the freed smaller blocks fragment the
    heap, so without this the resident set of a 4,096-token SmolLM2 capture grows ~1.5x
    more than the cache itself (measured: peak +627 MiB without, +423 MiB with; ~12 ms a call).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _cache_kwargs(runner: torch.nn.Module, cache: Any) -> dict[str, Any]:
    """KV-cache keyword for this transformers version (``cache`` in 5.x, ``past_key_values`` before)."""
    params = inspect.signature(runner.forward).parameters
    return {"cache": cache} if "cache" in params else {"past_key_values": cache}


class _Recorder:
    """Forward pre-hooks that turn each linear layer's input into counts and hand them to the
    writer thread through a bounded host ring (page-locked, filled by asynchronous copies
    on CUDA; on the CPU the counts are written straight into it)."""

    def __init__(
        self, writer: AsyncTraceWriter, layers: list[tuple[str, torch.nn.Linear]], k: float,
        head: torch.nn.Module | None, device: torch.device, ring: HostRing,
    ) -> None:
        self.writer, self.k = writer, k
        self.layers = layers
        self.index = {name: i for i, (name, _) in enumerate(layers)}
        self.head = head  # the output head gets role lm_head whatever its name
        self.added: dict[str, str | None] = {}  # layer -> layer it shares the input with
        self.calls = np.zeros(len(layers), dtype=np.int64)
        self.rows = 0  # token rows expected per call in the current chunk
        self.last_x: torch.Tensor | None = None
        self.last_src: str | None = None
        self.handles: list[Any] = []
        self.ring = ring
        self.cuda = device.type == "cuda"
        # Device-to-host copies run on their own stream, beside the forward.
        self.copy_stream = torch.cuda.Stream(device) if self.cuda else None
        # Reused float work buffers per input shape (CPU): fresh multi-MB allocations (page
        # faults) cost more than the arithmetic.
        self.work: dict[tuple[int, int], torch.Tensor] = {}

    def _work_for(self, rows: int, channels: int) -> torch.Tensor:
        key = (rows, channels)
        work = self.work.get(key)
        if work is None:
            if len(self.work) > 8:  # shapes change only at a prompt's last chunk
                self.work.clear()
            work = self.work[key] = torch.empty(key, dtype=torch.float32)
        return work

    def __enter__(self) -> "_Recorder":
        for name, mod in self.layers:
            self.handles.append(mod.register_forward_pre_hook(self._hook(name, mod)))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        self.last_x = None

    def start_chunk(self, rows: int) -> None:
        self.rows = rows
        self.calls[:] = 0
        self.last_x, self.last_src = None, None

    def end_chunk(self) -> None:
        self.last_x = None
        bad = np.flatnonzero(self.calls != 1)
        if bad.size:
            name = self.layers[int(bad[0])][0]
            n = int(self.calls[bad[0]])
            raise RuntimeError(
                f"layer {name!r} ran {n} times in one forward pass (expected once); the [tokens, channels] "
                "trace schema needs every hooked layer to see every token exactly once"
            )

    def _send_cpu(self, name: str, x: torch.Tensor) -> None:
        rows, C = x.shape
        slot = self.ring.take(HostRing.nbytes(rows, C), self.writer.check, self.writer.drain)
        out, _ = self.ring.views(slot, rows, C)
        try:
            counts, vth = counts_int16(x, self.k, work=self._work_for(rows, C), out=out)
        except ValueError as e:
            self.ring.release(slot)
            raise ValueError(f"layer {name!r} (k={self.k}): {e}") from None
        except BaseException:
            self.ring.release(slot)
            raise
        self.writer.append(name, counts.numpy(), vth.numpy(), release=lambda: self.ring.release(slot))

    def _send_cuda(self, name: str, x: torch.Tensor) -> None:
        rows, C = x.shape
        counts, status = counts_device(x, self.k)  # no host synchronisation
        n = 2 * rows + 2
        slot = self.ring.take(HostRing.nbytes(rows, C, n), self.writer.check)
        host_counts, host_status = self.ring.views(slot, rows, C, n)
        stream = self.copy_stream
        stream.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(stream):
            host_counts.copy_(counts, non_blocking=True)
            host_status.copy_(status, non_blocking=True)
            landed = torch.cuda.Event()
            landed.record(stream)
        counts.record_stream(stream)  # not reused by the allocator before the copy is done
        status.record_stream(stream)
        stat, k = host_status.numpy(), self.k

        def ready() -> None:  # on the writer thread
            landed.synchronize()
            check_status(name, k, stat, rows)

        self.writer.append(name, host_counts.numpy(), stat[:rows], ready=ready, release=lambda: self.ring.release(slot))

    def _hook(self, name: str, mod: torch.nn.Linear):
        i = self.index[name]

        def pre_hook(module: torch.nn.Module, args: tuple) -> None:
            x = args[0]
            self.calls[i] += 1
            rows = x.numel() // x.shape[-1]
            if rows != self.rows:
                raise RuntimeError(
                    f"layer {name!r} received {rows} token rows in a chunk of {self.rows} tokens "
                    "(routed/mixture-of-experts layers are not supported by the trace schema)"
                )
            shared = x is self.last_x
            src = self.last_src if shared else None
            if name not in self.added:
                role = "lm_head" if mod is self.head else role_of(name)
                self.writer.add_layer(LayerInfo(name, role, mod.in_features, mod.out_features, i), same_input_as=src)
                self.added[name] = src
            elif self.added[name] != src:
                raise RuntimeError(f"layer {name!r}: input sharing changed between chunks ({self.added[name]} -> {src})")
            if shared:
                return
            x2 = x.reshape(rows, x.shape[-1])
            if self.cuda:
                self._send_cuda(name, x2)
            else:
                self._send_cpu(name, x2)
            self.last_x, self.last_src = x, name

        return pre_hook


def _check_positive_int(value: Any, what: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}")


def capture(
    loaded: LoadedModel,
    prompts: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    k: float = 3.0,
    include_lm_head: bool = False,
    chunk_tokens: int = 512,
    overwrite: bool = False,
    progress: bool = True,
    max_tokens: int | None = None,
    compression: str | None = "gzip",
    attrs: dict[str, Any] | None = None,
) -> SpikeTrace:
    """Run ``loaded`` on ``prompts`` and write every linear layer's input spike counts to ``out``.

    Args:
        loaded: model and tokenizer (CPU or CUDA, float32 or bfloat16).
        prompts: a text, a text file (os.PathLike, UTF-8), or a list of them. Prompts are
            independent sequences captured one after another; tokens are concatenated and
            each prompt's first-token index is stored (``SpikeTrace.prompt_starts``).
        out: HDF5 file to create (atomically; FileExistsError unless ``overwrite``).
        k: threshold divisor, ``V_th = mean|x| / k`` per token (report default 3).
        include_lm_head: also record the output head's input (computes the logits).
        chunk_tokens: tokens per forward call; bounds activation memory for long prompts.
            Each call also carries the model's per-call overhead: on 2 CPU cores the SmolLM2
            decoder over 512 tokens took 0.554 s in 256-token chunks, 0.497 s in one (hence 512).
        max_tokens: keep at most this many tokens of each prompt (else a prompt longer than
            the model's context raises ValueError).
        compression: ``"gzip"`` (HDF5 deflate filter, level 1) or ``None`` (faster, ~2.7x larger).
        attrs: extra root attributes for the file.

    Returns:
        The written trace, opened (lazy, file-backed).
    """
    if not isinstance(loaded, LoadedModel):
        raise TypeError(f"loaded must be a neurosim.models.LoadedModel, got {type(loaded).__name__}")
    if not isinstance(k, (int, float, np.integer, np.floating)) or isinstance(k, bool) or not np.isfinite(k) or k <= 0:
        raise ValueError(f"k must be a positive finite number, got {k!r}")
    _check_positive_int(chunk_tokens, "chunk_tokens")
    _check_positive_int(max_tokens, "max_tokens", allow_none=True)
    texts = _read_prompts(prompts)
    ctx = loaded.max_positions
    items: list[_Prompt] = []
    for i, text in enumerate(texts):
        ids, offsets = tokenize(loaded, text)
        if max_tokens is not None:
            ids = ids[:max_tokens]
            offsets = None if offsets is None else offsets[:max_tokens]
        if ids.size == 0:
            raise ValueError(f"prompt {i} produced no tokens")
        if ids.size > ctx:
            raise ValueError(
                f"prompt {i} has {ids.size} tokens, more than the model's context of {ctx}; "
                f"pass max_tokens={ctx} (or less) to truncate it"
            )
        items.append(_Prompt(text, ids, offsets))

    model = loaded.model
    device = loaded.device
    layers = linear_layers(model, include_lm_head)
    if not layers:
        raise ValueError("the model has no nn.Linear layers to capture")
    # Without the output head, run only the decoder stack: the logits are not needed.
    runner = model if include_lm_head else getattr(model, "base_model", model)
    import transformers
    from tqdm import tqdm
    from transformers import DynamicCache

    meta = {
        "capture_dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "capture_device": str(device),
        "chunk_tokens": int(chunk_tokens),
        "include_lm_head": bool(include_lm_head),
        "n_prompts": len(items),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        **dict(attrs or {}),
    }
    total = int(sum(p.ids.size for p in items))

    # A CUDA forward leaves the cores to the writer thread and its compressors, which run
    # beside it. A CPU forward keeps every core busy and threads working beside it preempt
    # its parallel regions (measured on 2 cores: +0.6 s per 512 tokens), so the writer
    # thread is deferred: it runs when the host ring is full and at the end, while the
    # forward waits, and then compresses on every core.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cuda = device.type == "cuda"
    workers = max(1, min(32, cpus - 2)) if cuda else (0 if cpus < 2 else min(4, cpus))
    # Host staging between the hooks and the writer thread: bounded, at least a few of the
    # largest hand-overs (one layer's input for one chunk).
    rows = min(chunk_tokens, max(p.ids.size for p in items))
    largest = HostRing.nbytes(rows, max(m.in_features for _, m in layers), 2 * rows + 2)
    ring = HostRing(max(4 * largest, (_RING_CUDA if cuda else _RING_CPU)), pin=cuda)
    with AsyncTraceWriter(TraceWriter(
        out, model_id=loaded.model_id, k=float(k), overwrite=overwrite, attrs=meta, compression=compression,
        expected_tokens=total, workers=workers,
    ), max_items=256 if cuda else 4096, deferred=not cuda) as writer, _Recorder(writer, layers, float(k), output_head(model), device, ring) as rec, \
            torch.inference_mode(), tqdm(
        total=total, unit="tok", unit_scale=False, desc="capture", disable=None if progress else True
    ) as bar:
        for p in items:  # loop over prompts, then over chunks
            writer.begin_prompt(p.text)
            writer.append_tokens(p.ids, p.offsets)
            try:
                cache = DynamicCache(config=model.config)
            except TypeError:  # transformers < 4.56
                cache = DynamicCache()
            cache_kw = _cache_kwargs(runner, cache)
            if include_lm_head and "logits_to_keep" in inspect.signature(runner.forward).parameters:
                cache_kw["logits_to_keep"] = 0  # the head must see every token
            ids_t = torch.from_numpy(p.ids).to(device).unsqueeze(0)
            for start in range(0, p.ids.size, chunk_tokens):
                chunk = ids_t[:, start : start + chunk_tokens]
                rec.start_chunk(chunk.shape[1])
                runner(input_ids=chunk, use_cache=True, **cache_kw)
                rec.end_chunk()
                if start >= _TRIM_AFTER_TOKENS and device.type == "cpu":
                    _release_free_memory()
                bar.update(chunk.shape[1])
            del cache
    return SpikeTrace.open(writer.path)
