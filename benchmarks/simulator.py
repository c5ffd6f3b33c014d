"""Speed of the event-driven replay versus the dense matmul of the same layers (the floor).

Replays every linear layer of SmolLM2-135M (lm_head included) for 128 captured tokens
under each encoder scheme, and times, in the same run and interleaved (so machine load
hits all alike): the replay (spike trains, event lists, Activity counters, accumulation,
output), the dense float32 matmul ``counts @ W.T`` and the dense integer matmul
``counts @ q.T`` (INT8 x INT8 -> INT32 ``torch._int_mm`` where the counts fit INT8). It
prints absolute times, events/s and synaptic ops/s, and the ratios replay / dense. Every
replay is checked bit-exact against the dense integer result.

Counts come from the real embedded model (``neurosim.capture``), or with
``--random-model`` from a randomly initialised Llama of SmolLM2-135M's shape (hidden 576,
30 layers, 9 heads, 3 KV heads, intermediate 1536, vocab 49152): its real forward pass on
random tokens gives layer inputs, quantized with ``encoders.spike_counts`` in forward
pre-hooks. That mode needs neither the GGUF file nor gguf/snntorch (GPU machines).

Windows: ``--window report`` (default) sends every scheme the same counts, clipped to
[-7, 7] as the report's 3-step bitwise-signed window (binary/ternary T=7, bitwise and
bitwise-signed T=3, bitwise-twos T=4; binary and bitwise carry signs on split lines);
``--window exact`` uses each layer's smallest exact window (no clipping; long windows for
binary/ternary because of the heavy count tail).

Usage::

    python benchmarks/simulator.py                      # CPU, real model
    python benchmarks/simulator.py --device cuda --random-model
    python benchmarks/simulator.py --schemes bitwise-signed --engine both --repeats 5
    python benchmarks/simulator.py --schemes bitwise-signed --engine gemm,planes,dense --threads 1
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import encoders  # noqa: E402
from neurosim.sim import ReplaySettings, prepare_weight  # noqa: E402
from neurosim.sim.batch import BACKENDS, LayerInput, replay_layers  # noqa: E402
from neurosim.weights import quantize_int8  # noqa: E402

SMOLLM2_135M_SHAPE = dict(  # SmolLM2-135M config (HuggingFaceTB/SmolLM2-135M config.json)
    hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
    intermediate_size=1536, vocab_size=49152, max_position_embeddings=8192,
    rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, hidden_act="silu",
)
REPORT_WINDOW = {  # steps that carry [-7, 7]: the report's 3-step bitwise-signed range
    "binary": 7, "ternary": 7, "bitwise": 3, "bitwise-signed": 3, "bitwise-twos": 4,
}
UNSIGNED = ("binary", "bitwise")


@dataclass
class Layer:
    name: str
    counts: torch.Tensor  # int16 [tokens, in] (CPU)
    vth: torch.Tensor  # float32 [tokens]
    weight: torch.Tensor  # float32 [out, in] (CPU)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def counts_from_real_model(tokens: int, k: float) -> tuple[list[Layer], str]:
    """Capture the embedded SmolLM2 on the shipped text (neurosim.capture), lm_head included."""
    import tempfile

    from neurosim.capture import capture
    from neurosim.models import load_model

    loaded = load_model()
    text = (REPO / "neurosim" / "data" / "declaration_of_independence.txt").read_text(encoding="utf-8")
    mods = dict(loaded.model.named_modules())
    with tempfile.TemporaryDirectory() as tmp:
        trace = capture(loaded, text, Path(tmp) / "bench.h5", k=k, include_lm_head=True,
                        max_tokens=tokens, progress=False)
        with trace:
            layers = [
                Layer(info.name, torch.from_numpy(np.array(c)), torch.from_numpy(np.array(v)),
                      mods[info.name].weight.detach().float())
                for info, c, v in trace.iter_layers()
            ]
    return layers, loaded.model_id


def counts_from_random_model(tokens: int, k: float, seed: int) -> tuple[list[Layer], str]:
    """Random-weight Llama of SmolLM2-135M's shape; counts of its real forward on random tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(**SMOLLM2_135M_SHAPE)
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, cfg.vocab_size, (1, tokens))
    store: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            def hook(m, inp, name=name):
                sc = encoders.spike_counts(inp[0][0].detach(), k=k)
                store[name] = (sc.counts.to(torch.int16), sc.vth)
            hooks.append(mod.register_forward_pre_hook(hook))
    with torch.no_grad():
        model(ids)
    for h in hooks:
        h.remove()
    layers = [Layer(n, store[n][0], store[n][1], m.weight.detach().float())
              for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    return layers, "random Llama, SmolLM2-135M shape (seed %d)" % seed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--schemes", default=",".join(encoders.SCHEMES))
    ap.add_argument("--engine", default="events",
                    help="comma-separated engines (events, dense, gemm, planes) or 'both' (events,dense)")
    ap.add_argument("--backend", default="",
                    help="comma-separated backends of the gemm engine (reference, torch, triton); "
                         "default: triton on CUDA (torch without triton), reference on CPU")
    ap.add_argument("--profile", action="store_true",
                    help="after timing, profile one replay per scheme/engine (torch.profiler) and print where the time goes")
    ap.add_argument("--host-profile", action="store_true",
                    help="after timing, cProfile one replay of the first row: the Python functions by own host time")
    ap.add_argument("--window", choices=("report", "exact"), default="report")
    ap.add_argument("--random-model", action="store_true", help="no GGUF needed: random weights, SmolLM2 shape")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes; the fastest is reported")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--max-layers", type=int, default=0, help="replay only the first N layers (0: all)")
    ap.add_argument("--block-columns", type=int, default=32)
    ap.add_argument("--k", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    for s in schemes:
        encoders.check_scheme(s)
    from neurosim.sim.engine import check_engine

    engines = ["events", "dense"] if args.engine == "both" else [check_engine(e.strip()) for e in args.engine.split(",")]
    backends = [b.strip() for b in args.backend.split(",") if b.strip()] if args.backend else []
    for b in backends:
        if b not in BACKENDS:
            ap.error(f"unknown backend {b!r}; choose from {', '.join(BACKENDS)}")
    rows = [f"{e}:{b}" if e == "gemm" and b else e for e in engines for b in (backends if e == "gemm" else [""]) or [""]]

    t0 = time.perf_counter()
    layers, model_id = (counts_from_random_model(args.tokens, args.k, args.seed) if args.random_model
                        else counts_from_real_model(args.tokens, args.k))
    if args.max_layers:
        layers = layers[: args.max_layers]
    n_tok = int(layers[0].counts.shape[0])
    print(f"model: {model_id}; {len(layers)} linear layers; {n_tok} tokens; counts in {time.perf_counter() - t0:.1f} s")
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    try:
        import triton
        tri = f"triton {triton.__version__}"
    except ImportError:
        tri = "no triton"
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"device: {dev_name}; torch {torch.__version__}; {tri}; window: {args.window}; block {args.block_columns} columns")

    # Weights: INT8 per-group-128 (W8ASpike layout). Preparation is a load-time cost (not timed).
    prepared = []
    for L in layers:
        qw = quantize_int8(L.weight)
        w_deq_t = qw.dequantize().T.contiguous().to(device)
        q_t = qw.q.T.contiguous().to(device)
        ops = {e: prepare_weight(qw, device, need_tables=e == "events") for e in engines}
        prepared.append((qw, w_deq_t, q_t, ops))
    dense_macs = sum(int(L.counts.shape[0]) * L.weight.shape[0] * L.weight.shape[1] for L in layers)

    # One set of counts for every scheme: clipped to [-7, 7] (report window) or as captured.
    raw = [L.counts.to(torch.int64) for L in layers]
    counts = [c.clamp(-7, 7) for c in raw] if args.window == "report" else raw
    slots = sum(int(c.numel()) for c in raw)
    clipped = sum(int((c != r).sum()) for c, r in zip(counts, raw))
    counts_dev = [c.to(device) for c in counts]
    vths = [L.vth.to(device) for L in layers]

    # The dense floor: float32 GEMM and integer GEMM of the same counts.
    fits8 = all(int(c.abs().max()) <= 127 for c in counts) and _int_mm_ok(device, counts_dev[0], prepared[0][2])
    cf = [c.to(torch.float32) for c in counts_dev]
    if fits8:
        ci, int_kind = [c.to(torch.int8) for c in counts_dev], "torch._int_mm INT8xINT8->INT32"
    elif device.type == "cpu":
        ci, int_kind = [c.to(torch.int32) for c in counts_dev], "int32 torch.mm"
    else:  # no integer GEMM for counts beyond INT8 on GPUs: float64 holds these sums exactly
        ci, int_kind = [c.to(torch.float64) for c in counts_dev], "float64 torch.mm (exact integers)"

    def dense_float() -> list[torch.Tensor]:
        return [torch.mm(c, w) * v.unsqueeze(1) for c, (_, w, _, _), v in zip(cf, prepared, vths)]

    def dense_int() -> list[torch.Tensor]:
        if fits8:
            return [torch._int_mm(c, q_t) for c, (_, _, q_t, _) in zip(ci, prepared)]
        return [torch.mm(c, q_t.to(c.dtype)) for c, (_, _, q_t, _) in zip(ci, prepared)]

    extra = {}
    if device.type == "cuda":  # the usual GPU floor: BF16 tensor-core GEMM
        cb = [c.to(torch.bfloat16) for c in counts_dev]
        wb = [w.to(torch.bfloat16) for (_, w, _, _) in prepared]
        extra["dense bf16"] = lambda: [torch.mm(c, w) for c, w in zip(cb, wb)]

    t_ref = time.perf_counter()
    ref_int = [r.round().to(torch.int64).cpu() if r.is_floating_point() else r.to(torch.int64).cpu() for r in dense_int()]
    ti_fast = time.perf_counter() - t_ref < 2.0

    # Timed passes, interleaved: dense float, dense int, then each scheme/engine replay.
    best: dict[str, float] = {}
    stats: dict[tuple[str, str], tuple[int, int, dict[int, int], bool]] = {}

    def timed(key: str, fn) -> object:
        _sync(device)
        t = time.perf_counter()
        r = fn()
        _sync(device)
        best[key] = min(best.get(key, float("inf")), time.perf_counter() - t)
        return r

    def replay_all(scheme: str, engine: str):
        """Every layer through ``replay_layers``: the reference layer by layer on CPU, the
        deferred path with one host read on CUDA (``--backend``: fused Triton kernels or torch ops)."""
        eng, _, backend = engine.partition(":")
        T = REPORT_WINDOW[scheme] if args.window == "report" else None
        settings = ReplaySettings(scheme, T, block_columns=args.block_columns, device=device,
                                  sign_split=scheme in UNSIGNED, engine=eng)
        jobs = [LayerInput(qw, c, v, name=L.name, operand=ops[eng])
                for c, L, v, (qw, _, _, ops) in zip(counts_dev, layers, vths, prepared)]
        return replay_layers(jobs, settings, backend=backend or None)

    for rep in range(max(1, args.repeats) + 1):  # the first pass warms up and is not counted
        if rep == 1:
            best.clear()
        timed("dense float32", dense_float)
        if rep == 1 or ti_fast:  # a slow integer GEMM (CPU) is timed once; ref_int warmed it up
            timed("dense int", dense_int)
        for key, fn in extra.items():
            timed(key, fn)
        for s in schemes:
            for e in rows:
                res = timed(f"{s}/{e}", lambda s=s, e=e: replay_all(s, e))
                if (s, e) not in stats:
                    exact = all(torch.equal(r.acc.cpu(), ref) for r, ref in zip(res, ref_int))
                    ev = sum(r.activity.events for r in res)
                    so = sum(r.activity.synaptic_ops for r in res)
                    steps: dict[int, int] = {}
                    for r in res:
                        steps[r.steps] = steps.get(r.steps, 0) + 1
                    stats[(s, e)] = (ev, so, steps, exact)
                del res

    tf, ti = best["dense float32"], best["dense int"]
    print(f"\ndense matmuls of the same {len(layers)} layers ({dense_macs / 1e9:.2f} GMAC):")
    print(f"  float32 torch.mm: {tf * 1e3:9.2f} ms  ({dense_macs / tf / 1e9:7.2f} GMAC/s)")
    print(f"  integer ({int_kind}): {ti * 1e3:9.2f} ms  ({dense_macs / ti / 1e9:7.2f} GMAC/s)")
    for key in extra:
        print(f"  {key} torch.mm: {best[key] * 1e3:9.2f} ms  ({dense_macs / best[key] / 1e9:7.2f} GMAC/s)")
    print(f"\n{'scheme':15s} {'engine':16s} {'T':>9s} {'events':>11s} {'ev/slot':>7s} {'synops':>9s} "
          f"{'time ms':>9s} {'Mev/s':>8s} {'Gsynop/s':>9s} {'x float':>8s} {'x int':>7s} {'clipped':>8s} exact")
    for s in schemes:
        for e in rows:
            ev, so, steps, exact = stats[(s, e)]
            t = best[f"{s}/{e}"]
            tspan = f"{min(steps)}-{max(steps)}" if len(steps) > 1 else str(min(steps))
            print(f"{s:15s} {e:16s} {tspan:>9s} {ev:11d} {ev / slots:7.3f} {so / 1e9:8.2f}G "
                  f"{t * 1e3:9.1f} {ev / t / 1e6:8.1f} {so / t / 1e9:9.2f} {t / tf:8.2f} {t / ti:7.2f} "
                  f"{clipped / slots:8.4f} {'yes' if exact else 'NO'}")
    print("\nx float / x int: replay time over the dense float32 / integer matmul time (1 = as fast as the floor).")
    print("clipped: fraction of counts clamped to the window. exact: replay accumulators == dense integer matmul.")
    if args.profile:  # the first row (the fused kernels on CUDA by default)
        _profile(device, [(f"{s}/{rows[0]}", lambda s=s: replay_all(s, rows[0])) for s in schemes])
    if args.host_profile:
        _host_profile(device, [(f"{s}/{rows[0]}", lambda s=s: replay_all(s, rows[0])) for s in schemes])
    return 0 if all(st[3] for st in stats.values()) else 1


def _host_profile(device: torch.device, runs: list) -> None:
    """One pass of each replay under cProfile: where the host time goes (own time, then cumulative)."""
    import cProfile
    import io
    import pstats

    for key, fn in runs:
        _sync(device)
        prof = cProfile.Profile()
        prof.enable()
        fn()
        _sync(device)
        prof.disable()
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(22)
        stats.sort_stats("cumulative").print_stats(22)
        print(f"\nhost profile of {key} (one pass, cProfile):\n{out.getvalue()}")


def _profile(device: torch.device, runs: list) -> None:
    """One profiled pass of each replay: the ops by device time and by host time, and the
    number of kernel launches (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for key, fn in runs:
        _sync(device)
        with profile(activities=acts) as prof:
            fn()
            _sync(device)
        ka = prof.key_averages()
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(f"\nprofile of {key} (one pass):")
        print(ka.table(sort_by=sort, row_limit=14, max_name_column_width=48))
        if device.type == "cuda":
            kernels = sum(e.count for e in ka if getattr(e, "device_type", None) is not None
                          and str(e.device_type).endswith("CUDA"))
            print(f"kernels launched: {kernels}")
        print(ka.table(sort_by="self_cpu_time_total", row_limit=10, max_name_column_width=48))


def _int_mm_ok(device: torch.device, counts: torch.Tensor, q_t: torch.Tensor) -> bool:
    """Whether torch._int_mm (INT8 x INT8 -> INT32) runs here: it needs more than 16 rows and
    K, N multiples of 8 (all SmolLM2 layers), and builds that support it."""
    if counts.shape[0] <= 16 or not hasattr(torch, "_int_mm"):
        return False
    try:
        torch._int_mm(counts.to(torch.int8), q_t)
    except RuntimeError as e:
        print(f"torch._int_mm unavailable here ({str(e).splitlines()[0][:80]}); using another integer matmul")
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
