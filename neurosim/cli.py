"""The ``neurosim`` command line.

Exit codes: 0 success, 1 a failure while working (bad file, model missing, ...),
2 a usage error (argparse). Errors go to stderr as one line; ``--debug`` shows tracebacks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .cli_base import CLIError, UsageError, _open_trace  # noqa: F401  (CLIError, UsageError: re-exported)
from .cli_energy import cmd_energy, cmd_generate, cmd_neurobench, cmd_validate_hw


# Integer options that must be at least 1 (attribute -> flag); string-valued options of the
# same name (export --tokens START:STOP) are checked where they are parsed.
_AT_LEAST_ONE = {"max_tokens": "--max-tokens", "max_new_tokens": "--max-new-tokens", "T": "--T", "tokens": "--tokens",
                 "channels": "--channels", "neurons": "--neurons", "prompts_per_shard": "--prompts-per-shard"}


def _validate(args: argparse.Namespace) -> None:
    """Check every argument value before the model or a trace is loaded (each check is instant)."""
    import math

    for name in ("k", "ks"):
        values = getattr(args, name, None)
        for k in values if isinstance(values, list) else ([] if values is None else [values]):
            if not (math.isfinite(k) and k > 0):
                raise UsageError(f"--{name} must be a positive number (V_th = mean|x| / k), got {k:g}")
    for attr, flag in _AT_LEAST_ONE.items():
        v = getattr(args, attr, None)
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            raise UsageError(f"{flag} must be at least 1, got {v}")
    if getattr(args, "workers", 0) < 0:
        raise UsageError(f"--workers must be 0 (in this process) or more, got {args.workers}")
    T, scheme = getattr(args, "T", None), getattr(args, "scheme", None)
    if isinstance(T, int) and scheme is not None:
        import encoders

        top = encoders.MAX_BITWISE_STEPS
        if encoders.get_scheme(scheme).bitwise and T > top:
            raise UsageError(f"--T {T} is more than the {top} steps a bitwise scheme supports")
    if getattr(args, "device", None) == "cuda":
        from importlib.metadata import version

        def cuda_available() -> bool:
            import torch  # seconds on a busy machine: only when the build may have CUDA

            return torch.cuda.is_available()

        torch_version = version("torch")
        if torch_version.endswith("+cpu") or not cuda_available():
            raise UsageError(f"--device cuda: torch {torch_version} sees no CUDA GPU on this machine; use --device cpu")
    if getattr(args, "text_file", None) is not None:
        path = Path(args.text_file)
        if not path.is_file():
            raise UsageError(f"text file {path} does not exist")
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise UsageError(f"text file {path} is not UTF-8 (byte {e.start}: {e.reason}); "
                             "convert it first, e.g. iconv -t UTF-8") from None
        except OSError as e:
            raise UsageError(f"cannot read text file {path}: {e.strerror}") from None
    if getattr(args, "command", None) == "export":
        from .export.formats import check_format

        args.format = check_format(args.format)  # tonic: the npy file of x/t/p events
    if getattr(args, "format", None) == "nir" and args.model is None:
        raise UsageError("--format nir needs the layer's weights: add --model embedded (SmolLM2) or --model PATH; "
                         "a graph without them cannot compute the layer")


def _check_out_dir(path: str, overwrite: bool) -> Path:
    """Refuse an output folder that is a file, or not empty (unless ``overwrite``); create nothing."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CLIError(f"output path {p} exists and is not a folder")
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise CLIError(f"output folder {p} is not empty; pass --overwrite to replace its files")
    return p


def _out_dir(path: str, overwrite: bool) -> Path:
    """Create ``path`` as an empty output folder, or refuse (unless ``overwrite``)."""
    p = _check_out_dir(path, overwrite)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"cannot create output folder {p}: {e.strerror}") from e
    return p


# ----------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    """Encode Gaussian activations with every scheme; print T, spikes, sparsity; save a raster."""
    import numpy as np

    import encoders
    from analysis.compare import lines_per_channel, train_sparsity
    from analysis.plots import plot_raster, save_figure

    _check_out_dir(args.out, args.overwrite)  # refuse before computing; create only when writing
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.tokens, args.channels)).astype(np.float32)
    counts, vth = encoders.spike_counts(x, k=args.k)
    mag = np.abs(counts)
    print(f"{args.tokens} tokens x {args.channels} channels of N(0, 1) activations, k = {args.k}")
    print(f"V_th per token: mean {vth.mean():.4f} (expected sqrt(2/pi)/k = {np.sqrt(2 / np.pi) / args.k:.4f})")
    print(f"counts: min {counts.min()}, max {counts.max()}, |s| <= 7: {(mag <= 7).mean():.3f} "
          f"(report, Gaussian: about 0.954), silent (s = 0): {(counts == 0).mean():.3f}")
    print(f"first token, first 12 channels: {counts[0, :12].tolist()}")
    print("each scheme at its lossless T (nothing clipped); sparsity = 1 - spikes / (lines x values x T), "
          "binary and bitwise sign-split on 2 lines per channel")
    print(f"{'scheme':15s} {'T':>3s} {'lines':>5s} {'spikes':>9s} {'sparsity':>9s}")
    for scheme in encoders.SCHEMES:
        # Unsigned schemes carry magnitudes; the sign travels on a second line (documented).
        data = mag if encoders.get_scheme(scheme).needs_sign_split else counts
        spikes = encoders.encode(data, scheme)
        assert np.array_equal(encoders.decode(spikes, scheme), data)
        n = int(np.count_nonzero(spikes))
        T = spikes.shape[0]
        print(f"{scheme:15s} {T:3d} {lines_per_channel(scheme):5d} {n:9d} {train_sparsity(scheme, n, counts.size, T):9.3f}")
    fig = plot_raster(counts, scheme=encoders.DEFAULT_SCHEME, T=3, layer="demo (Gaussian)", tokens=12, neurons=40)
    out = _out_dir(args.out, args.overwrite)
    paths = save_figure(fig, out / "raster", formats=("png",))
    print(f"raster: {paths[0]}")
    return 0


# ----------------------------------------------------------------------------- run


def _prompts(args: argparse.Namespace) -> object:
    if args.prompt is not None:
        if not args.prompt.strip():
            raise CLIError("--prompt is empty")
        return args.prompt
    path = Path(args.text_file)
    if not path.is_file():
        raise CLIError(f"text file {path} does not exist")
    return path


def cmd_run(args: argparse.Namespace) -> int:
    """Prompt (or corpus) -> trace, statistics, replay, energy; report in --out."""
    if args.corpus:
        return _run_corpus(args)
    if args.prompt is None and args.text_file is None:
        raise CLIError("give --prompt TEXT, --text-file FILE or --corpus FILE_OR_DIR")
    from .pipeline import resolve_platforms, run_pipeline

    resolve_platforms(args.chip, args.gpu)  # unknown names fail before the model loads
    res = run_pipeline(
        _prompts(args), args.out, model=args.model, k=args.k, schemes=args.schemes, chips=args.chip,
        gpus=args.gpu, gpu_regime=args.gpu_regime, device=args.device, dtype=args.dtype, max_tokens=args.max_tokens,
        overwrite=args.overwrite,
        progress=not args.quiet, log=(lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr)),
    )
    s = res.summary
    print(f"tokens: {s['tokens']}  layers: {s['layers']}")
    from analysis.tables import headline_line

    print(f"window: {s['window_scheme']}, T = {s['window_steps']} steps; {s['clipped_fraction']:.1%} of counts "
          f"do not fit it and are clipped")
    print(headline_line(s, s["window"]))
    rows = res.energy["platforms"]
    ref = rows[0]["reference"] if rows else args.gpu[0]
    print(f"{'platform':24s} {'J/token [low, high]':>32s} {'s/token [low, high]':>35s} {'energy vs ' + ref:>19s}")
    for r in rows:
        name = r['platform'] + (f" [{r['regime']}]" if r.get("regime") else "")
        e, t = (f"{r[k]:.4g} [{r.get(k + '_low', r[k]):.4g}, {r.get(k + '_high', r[k]):.4g}]"
                for k in ("energy_per_token_j", "latency_per_token_s"))
        print(f"{name:24s} {e:>32s} {t:>35s} {r['energy_vs_ref']:19.3g}")
    print(f"report: {res.report_html}")
    return 0


def _run_corpus(args: argparse.Namespace) -> int:
    from .corpus import run_corpus

    res = run_corpus(args.corpus, args.out, model=args.model, k=args.k, prompts_per_shard=args.prompts_per_shard,
                     n_workers=args.workers, scheduler=args.scheduler, resume=args.resume, overwrite=args.overwrite,
                     device=args.device, max_tokens=args.max_tokens, progress=not args.quiet)
    s = res.stats.summary()
    print(f"shards: {len(res.shards)} ({res.reused} reused, {res.computed} computed)  tokens: {res.tokens}  "
          f"time: {res.seconds:.1f} s")
    from analysis.tables import headline_line

    print(f"window: {s['window_scheme']}, T = {s['window_steps']} steps; {s['clipped_fraction']:.1%} of counts clipped")
    print(headline_line(s, res.stats.window))
    print(f"manifest: {res.manifest}")
    if res.report is not None:
        print(f"statistics: {res.stats_path}  report: {res.report}")
    return 0


# ----------------------------------------------------------------------------- trace commands


def _stats_of(trace, quiet: bool):
    from analysis.stats import NoStatsError, SpikeStats, read_stats

    try:
        return read_stats(trace.path)  # damaged statistics raise StatsDamagedError (never trusted)
    except NoStatsError:  # no /stats yet: compute them (the file is not modified)
        return SpikeStats.from_trace(trace, progress=not quiet)


def _clip_text(text: str, width: int = 100) -> str:
    """One line of ``text``: whitespace collapsed, cut at ``width`` characters with an ellipsis."""
    one = " ".join(text.split())
    return repr(one if len(one) <= width else one[: width - 3] + "...")


def cmd_verify(args: argparse.Namespace) -> int:
    """Checksums of every dataset, and the stored statistics against ones re-derived from the counts."""
    from analysis.verify import verify_trace

    if not Path(args.trace).exists():
        raise CLIError(f"trace {args.trace} does not exist")
    res = verify_trace(args.trace)
    for line in res.problems:
        print(line)
    if not res.ok:
        print(f"{res.path}: {len(res.problems)} problem(s) found", file=sys.stderr)
        return 1
    sums = "checksums verified" if res.checksums else "no checksums stored (schema 1.0): data read back"
    stats = "stored statistics equal the re-derived ones" if res.has_stats else "no stored statistics"
    print(f"{res.path}: ok ({res.layers} layers, {res.tokens} tokens; {sums}; {stats})")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """What a trace file holds: model, tokens, layers, schema, statistics."""
    with _open_trace(args.trace) as tr:
        a = tr.attrs
        print(f"file: {tr.path}")
        sums = "checksums" if tr.has_checksums else "no checksums"
        print(f"schema: {a.get('schema_version')}.{a.get('schema_minor', 0)} ({sums})  written by neurosim {a.get('package_version')}  created {a.get('created')}")
        print(f"model: {tr.model_id}  k: {tr.k}  V_th clamp: {tr.vth_clamp}")
        print(f"tokens: {tr.n_tokens} in {len(tr.prompt_starts)} prompt(s)  layers: {len(tr.layers)}")
        for n, text in enumerate((tr.prompt_text or [])[:3]):
            print(f"prompt {n}: {_clip_text(text)}")
        if len(tr.prompt_text or []) > 3:
            print(f"... {len(tr.prompt_text) - 3} more prompts")
        print(f"{'layer':42s} {'role':8s} {'in':>6s} {'out':>6s}")
        for name in tr.layers if args.all_layers else tr.layers[:12]:
            info = tr.layer(name)
            print(f"{name:42s} {info.role:8s} {info.in_features:6d} {info.out_features:6d}")
        if not args.all_layers and len(tr.layers) > 12:
            print(f"... {len(tr.layers) - 12} more (--all-layers)")
        import h5py

        with h5py.File(tr.path, "r") as f:
            has_stats = "stats" in f
        if has_stats:
            from analysis.tables import headline_line

            st = _stats_of(tr, True)
            s = st.summary()
            print(f"stats ({s['window_scheme']}, T = {s['window_steps']}, {s['clipped_fraction']:.2%} of counts clipped): "
                  + headline_line(s, st.window))
        else:
            print("stats: none stored (neurosim run writes them)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Encoder comparison table of a trace."""
    from analysis.compare import COLUMN_NOTE, compare_encoders, comparison_caption, comparison_markdown

    budgets = dict(b.split("=", 1) for b in args.budget) if args.budget else {}
    try:
        budgets = {k: int(v) for k, v in budgets.items()}
    except ValueError as e:
        raise CLIError(f"--budget takes SCHEME=T with an integer T: {e}") from e
    from analysis.stats import SpikeStats

    from .code_energy import compare_with_energy

    with _open_trace(args.trace) as tr:
        stats = _stats_of(tr, args.quiet)
        rows = compare_encoders(stats, budgets=budgets, bit_order=args.bit_order)  # checks the budgets
        delta = SpikeStats(stats.window, delta=True).update_trace(tr, progress=not args.quiet, chunk_rows=2048)
    table, extra = compare_with_energy(stats, delta, budgets=budgets, bit_order=args.bit_order)
    print(comparison_caption(rows))
    print(comparison_markdown(table, extra))
    print("\n" + COLUMN_NOTE)
    if args.plot:
        from analysis.plots import plot_encoder_comparison, save_figure

        print(f"plot: {save_figure(plot_encoder_comparison(rows), args.plot, formats=('png',))[0]}")
    return 0


def cmd_sweep_k(args: argparse.Namespace) -> int:
    """Table 11 of the report for the model at hand: recapture at each k."""
    import tempfile

    from analysis.sweep import k_sweep, sweep_markdown

    from .capture import capture
    from .models import load_model

    prompts = _prompts(args)
    loaded = load_model(args.model, progress=not args.quiet)
    with tempfile.TemporaryDirectory() as tmp:
        def counts_for_k(k: float):
            tr = capture(loaded, prompts, Path(tmp) / f"k{k}.h5", k=k, progress=False, max_tokens=args.max_tokens)
            with tr:
                yield from tr.iter_layers()

        ppl = None
        if args.perplexity:
            from .spiking import perplexity

            ppl = lambda k: perplexity(loaded, prompts if isinstance(prompts, str) else Path(prompts).read_text(),
                                       spiking={"k": k}, max_tokens=args.max_tokens or 512)
        rows = k_sweep(counts_for_k, ks=args.ks, perplexity=ppl, progress=not args.quiet)
    print(sweep_markdown(rows, model=loaded.model_id.split(" (")[0]))
    if args.plot:
        from analysis.plots import plot_k_sweep, save_figure

        print(f"plot: {save_figure(plot_k_sweep(rows, loaded.model_id.split(' (')[0]), args.plot, formats=('png',))[0]}")
    return 0


def cmd_raster(args: argparse.Namespace) -> int:
    """Spike raster PNG of one layer."""
    from analysis.plots import plot_raster, save_figure

    with _open_trace(args.trace) as tr:
        if args.layer not in tr.layers:
            raise CLIError(f"layer {args.layer!r} is not in the trace; `neurosim inspect --all-layers` lists them")
        counts = tr.counts(args.layer)
    fig = plot_raster(counts, scheme=args.scheme, T=args.T, layer=args.layer, tokens=args.tokens, neurons=args.neurons)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out} exists; pass --overwrite to replace it")
    print(f"raster: {save_figure(fig, out, formats=('png',))[0]}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export one layer's spike events for hardware teams (docs/export-formats.md)."""
    from .export import resolve_output, trace_layer_spikes, write_layer_spikes

    tokens = None
    if args.tokens:
        a, _, b = args.tokens.partition(":")
        try:
            tokens = (int(a or 0), int(b)) if b else (0, int(a))
        except ValueError:
            raise CLIError(f"--tokens takes START:STOP or N, got {args.tokens!r}") from None
    neurons = None
    if args.neurons:
        try:
            neurons = [int(n) for n in args.neurons.split(",")]
        except ValueError:
            raise CLIError(f"--neurons takes comma-separated integers, got {args.neurons!r}") from None
    resolve_output(args.out, args.layer, args.scheme, args.format, args.overwrite)  # fail before reading
    with _open_trace(args.trace) as tr:
        ls = trace_layer_spikes(tr, args.layer, scheme=args.scheme, T=args.T, bit_order=args.bit_order,
                                neurons=neurons, tokens=tokens)
    weight = None
    if args.format == "nir":  # _validate made sure --model is given
        from .export.nir_graph import import_nir
        from .models import load_model
        from .weights import quantize_int8

        import_nir()
        loaded = load_model(None if args.model == "embedded" else args.model, progress=not args.quiet)
        mods = dict(loaded.model.named_modules())
        if args.layer not in mods:
            raise CLIError(f"the model has no layer {args.layer!r}")
        weight = quantize_int8(mods[args.layer].weight.detach())  # the INT8 x scale weights the replay uses
    path = write_layer_spikes(ls, args.format, args.out, weight=weight, overwrite=args.overwrite)
    how = "given by --T" if args.T is not None else "the layer's lossless T (Int2Spike default for these tokens)"
    print(f"{args.scheme}, T = {ls.T} steps per token ({how}); no count clipped")
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(
        prog="neurosim",
        description="Neuromorphic simulation and spike analysis of spiking LLMs (SpikingBrain scheme).",
    )
    p.add_argument("--version", action="version", version=f"neurosim {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    common.add_argument("--quiet", action="store_true", help="no progress bars or progress messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add = sub.add_parser

    def parser(name: str, **kw):
        return add(name, parents=[common], **kw)

    sub.add_parser = parser  # every subcommand takes --debug and --quiet

    import encoders
    import hw_models

    from .defaults import DEFAULT_CHIPS, DEFAULT_GPUS, DEFAULT_SCHEMES
    from .export.formats import ALIASES, FORMATS

    # Choices and help lists come from the registries (encoders, hw_models, neurosim.export).
    schemes = list(encoders.REGISTRY)
    scheme0 = encoders.DEFAULT_SCHEME
    orders = list(encoders.BIT_ORDERS)
    chip_help = ", ".join(hw_models.CHIP_PRESETS)
    gpu_help = ", ".join(hw_models.GPU_ALIASES)
    r = sub.add_parser("run", help="prompt -> spike trace -> replay -> statistics -> energy report",
                       description="Capture spike counts of a real model on a prompt, replay them as spike trains "
                                   "through the layers' INT8 weights, analyse them and price them on chips and GPUs.")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--prompt", help="the prompt text")
    src.add_argument("--text-file", help="a UTF-8 text file used as the prompt")
    src.add_argument("--corpus", help="corpus run: a file with one prompt per line, or a folder of .txt files")
    r.add_argument("--model", help="local HF model folder or .gguf file (default: the embedded SmolLM2-135M)")
    r.add_argument("--k", type=float, default=3.0, help="threshold divisor, V_th = mean|x|/k (default 3)")
    r.add_argument("--schemes", nargs="+", default=list(DEFAULT_SCHEMES), choices=schemes, metavar="SCHEME",
                   help=f"schemes to replay; the first is priced (default: {' '.join(DEFAULT_SCHEMES)})")
    r.add_argument("--chip", nargs="+", default=list(DEFAULT_CHIPS), help=f"neuromorphic chip presets ({chip_help})")
    r.add_argument("--gpu", nargs="+", default=list(DEFAULT_GPUS), help=f"GPU presets ({gpu_help})")
    r.add_argument("--gpu-regime", default=hw_models.REGIMES[0], choices=hw_models.REGIMES,
                   help="GPU software regime: roofline only, a PyTorch decode loop, or transformers generate "
                        "(docs/gpu-regimes.md)")
    r.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    r.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="model parameter dtype (auto: float32 on the CPU, the checkpoint's own dtype on CUDA)")
    r.add_argument("--max-tokens", type=int, help="keep at most this many tokens of each prompt")
    r.add_argument("--out", required=True, help="output folder (trace.h5, plots/, report.md, report.html)")
    r.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    r.add_argument("--workers", type=int, default=2, help="corpus: local Dask worker processes (0: in this process)")
    r.add_argument("--scheduler", help="corpus: address of an existing Dask scheduler (tcp://host:8786)")
    r.add_argument("--prompts-per-shard", type=int, default=4, help="corpus: prompts per shard file")
    r.add_argument("--resume", action="store_true", help="corpus: keep complete shards of an interrupted run")
    r.set_defaults(func=cmd_run)

    i = sub.add_parser("inspect", help="what a trace file holds")
    i.add_argument("trace")
    i.add_argument("--all-layers", action="store_true")
    i.set_defaults(func=cmd_inspect)

    c = sub.add_parser("compare-encoders", help=f"compare the {len(schemes)} spike schemes on a trace")
    c.add_argument("trace")
    c.add_argument("--budget", nargs="*", metavar="SCHEME=T", help=f"step budgets, e.g. {scheme0}=4")
    c.add_argument("--bit-order", default=orders[0], choices=orders)
    c.add_argument("--plot", help="also save a bar chart to this PNG")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("energy", help="price a trace (or a generation's activity file) on neuromorphic chips and GPUs")
    e.add_argument("trace", nargs="?", help="trace file (or give --activity)")
    e.add_argument("--activity", help="activity file of neurosim generate --activity-out, priced instead of a trace")
    e.add_argument("--phase", default="decode", choices=["decode", "prefill"], help="--activity: which phase (default decode)")
    e.add_argument("--scheme", default=scheme0, choices=schemes)
    e.add_argument("--T", type=int, help=f"step budget (default: the scheme's budget, {scheme0} "
                                         f"{encoders.get_scheme(scheme0).budget})")
    e.add_argument("--chip", nargs="+", default=list(DEFAULT_CHIPS), help=f"chip presets ({chip_help})")
    e.add_argument("--gpu", nargs="+", default=list(DEFAULT_GPUS), help=f"GPU presets ({gpu_help})")
    e.add_argument("--gpu-regime", default=hw_models.REGIMES[0], choices=hw_models.REGIMES,
                   help="GPU software regime (docs/gpu-regimes.md)")
    e.add_argument("--model", help="the trace's model, if not the embedded one: only graded and bitwise-naf replay "
                                  "through its weights (the other schemes are priced from the counts alone)")
    e.add_argument("--format", default="text", choices=["text", "json"],
                   help="json: per-platform J/token and s/token with [low, high], kind, regime")
    e.set_defaults(func=cmd_energy)

    vh = sub.add_parser("validate-hw", help="chip presets against published figures (exit 1 if one fails)")
    vh.add_argument("--no-peers", dest="peers", action="store_false",
                    help="skip the KerasSpiking / SpikingJelly comparison")
    vh.set_defaults(func=cmd_validate_hw)

    nbp = sub.add_parser("neurobench", help="NeuroBench activation sparsity and synaptic operations of a trace",
                         description="NeuroBench v2.3 workload metrics per token (docs/neurobench.md).")
    nbp.add_argument("trace")
    nbp.add_argument("--scheme", default=scheme0, choices=["counts"] + schemes,
                     help="what enters each layer: 'counts' (integer counts, MACs) or a spike scheme's planes (ACs)")
    nbp.add_argument("--T", type=int, help="steps per token of a spike scheme (default: its budget)")
    nbp.add_argument("--weights", default="int8", choices=["int8", "float"],
                     help="weights whose non-zero pattern counts: W8ASpike INT8 (default) or the model's float")
    nbp.add_argument("--format", default="text", choices=["text", "json"])
    nbp.add_argument("--model", help="the trace's model, if not the embedded one")
    nbp.set_defaults(func=cmd_neurobench)

    g = sub.add_parser("generate", help="generate text with every linear layer running on the spike simulator",
                       description="Greedy closed-loop generation: each nn.Linear computes from the spike trains of its "
                                   "own input (events or dense engine, INT8 weights), or the plain model (float).")
    g.add_argument("--prompt", required=True)
    g.add_argument("--max-new-tokens", type=int, default=16)
    g.add_argument("--scheme", default=scheme0, choices=schemes)
    g.add_argument("--T", type=int, help="window in steps (default: the scheme's budget)")
    g.add_argument("--k", type=float, default=3.0, help="threshold divisor, V_th = mean|x|/k (default 3)")
    g.add_argument("--engine", nargs="+", default=["events"], choices=["events", "dense", "float"],
                   help="one or more engines, run in turn (default: events)")
    g.add_argument("--model", help="local HF model folder or .gguf file (default: the embedded SmolLM2-135M)")
    g.add_argument("--activity-out", help="write the per-layer Activity of prefill and decode (JSON) of the first "
                                          "spiking engine, for neurosim energy --activity")
    g.add_argument("--overwrite", action="store_true", help="replace an existing --activity-out file")
    g.set_defaults(func=cmd_generate)

    k = sub.add_parser("sweep-k", help="sparsity and |s| <= 7 for k in 2..4 (report Table 11)")
    ksrc = k.add_mutually_exclusive_group(required=True)
    ksrc.add_argument("--prompt")
    ksrc.add_argument("--text-file")
    k.add_argument("--model")
    k.add_argument("--ks", type=float, nargs="+", default=[2.0, 2.5, 3.0, 3.5, 4.0])
    k.add_argument("--max-tokens", type=int, default=256)
    k.add_argument("--perplexity", action="store_true", help="also the spiking model's perplexity at each k")
    k.add_argument("--plot", help="save the curves to this PNG")
    k.set_defaults(func=cmd_sweep_k)

    ra = sub.add_parser("raster", help="spike raster PNG of one layer")
    ra.add_argument("trace")
    ra.add_argument("--layer", required=True)
    ra.add_argument("--scheme", default=scheme0, choices=schemes)
    ra.add_argument("--T", type=int, default=3, help="window in steps (default 3)")
    ra.add_argument("--tokens", type=int, default=16)
    ra.add_argument("--neurons", type=int, default=64)
    ra.add_argument("--out", required=True, help="PNG path")
    ra.add_argument("--overwrite", action="store_true")
    ra.set_defaults(func=cmd_raster)

    x = sub.add_parser("export", help=f"export a layer's spike events ({', '.join(FORMATS)}; tonic = npy)",
                       description="Formats and byte layouts: docs/export-formats.md")
    x.add_argument("trace")
    x.add_argument("--format", required=True, choices=[*FORMATS, *ALIASES],
                   help="npy and tonic are the same file: tonic-style x/t/p events (docs/export-formats.md)")
    x.add_argument("--layer", required=True)
    x.add_argument("--scheme", default=scheme0, choices=schemes)
    x.add_argument("--T", type=int)
    x.add_argument("--bit-order", default=orders[0], choices=orders)
    x.add_argument("--tokens", help="token range START:STOP (or N for the first N)")
    x.add_argument("--neurons", help="comma-separated input channel ids")
    x.add_argument("--model", help="nir (required): the layer's weights from this model ('embedded' for SmolLM2)")
    x.add_argument("--out", required=True, help="output file or existing folder")
    x.add_argument("--overwrite", action="store_true")
    x.set_defaults(func=cmd_export)

    v = sub.add_parser("verify", help="check a trace's checksums and re-derive its statistics from the counts")
    v.add_argument("trace", help="trace .h5 file")
    v.set_defaults(func=cmd_verify)
    d = sub.add_parser("demo", help="encode Gaussian activations with every scheme and save a raster")
    d.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    d.add_argument("--tokens", type=int, default=64)
    d.add_argument("--channels", type=int, default=576)
    d.add_argument("--k", type=float, default=3.0, help="threshold divisor, V_th = mean|x|/k")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurosim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _validate(args)
        return func(args)
    except UsageError as e:
        print(f"neurosim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neurosim: interrupted", file=sys.stderr)
        return 1
    except Exception as e:  # one clear line unless --debug
        if getattr(args, "debug", False):
            raise
        msg = str(e) or type(e).__name__
        print(f"neurosim: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
