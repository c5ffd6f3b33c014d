"""``neurosim energy``, ``validate-hw``, ``neurobench`` and ``generate``: the commands that price
activity or run the spiking model (the parser is in :mod:`neurosim.cli`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli_base import CLIError, _open_trace


def cmd_energy(args: argparse.Namespace) -> int:
    """Price a trace on chips and GPUs from its counts (the replay's Activity, without the model)."""
    import hw_models
    from analysis.stats import DEFAULT_BUDGETS

    from .platforms import resolve_platforms
    from .sim.activity_fast import covers, trace_activity

    chips, gpus = resolve_platforms(args.chip, args.gpu)
    if args.activity is not None:
        return _energy_of_activity(args, chips, gpus)
    if args.trace is None:
        raise CLIError("give a TRACE, or --activity FILE.json (written by neurosim generate --activity-out)")
    T = args.T if args.T is not None else DEFAULT_BUDGETS[args.scheme]
    with _open_trace(args.trace) as tr:
        if covers(args.scheme):
            # Activity depends on counts and layer shapes only (INT8 weights: 1 byte each), so
            # the model is not loaded; the records equal replay_trace's (tests/test_activity_fast.py).
            rep = trace_activity(tr, args.scheme, T, clip=True, progress=not args.quiet)
        else:  # graded payloads and NAF digits: replay through the model's INT8 weights
            from .models import EMBEDDED_ID, load_model
            from .sim.model import replay_trace

            model = args.model if args.model else (None if tr.model_id == EMBEDDED_ID else tr.model_id)
            loaded = load_model(model, progress=not args.quiet)
            rep = replay_trace(tr, loaded.model, args.scheme, T, clip=True, progress=not args.quiet)
    acts = list(rep.layers.values())
    results = hw_models.evaluate(acts, chips, gpus, regime=args.gpu_regime)
    from hw_models.ranges import ranged_rows

    rows = ranged_rows(results, acts, {c.name: c for c in chips})
    values = sum(a.tokens * a.in_features for a in acts)
    if args.format == "json":
        import json

        print(json.dumps({"tokens": rep.tokens, "scheme": args.scheme, "T": T, "clipped": int(rep.clipped),
                          "clipped_fraction": rep.clipped / values if values else 0.0, "gpu_regime": args.gpu_regime,
                          "platforms": rows}, indent=2))
        return 0
    print(f"{rep.tokens} tokens, scheme {args.scheme}, T = {T} steps: {rep.clipped} counts "
          f"({rep.clipped / values if values else 0:.2%}) clipped to the window")
    print(hw_models.comparison_markdown(results, reference=gpus[0].name if gpus else results[0].platform))
    print("\nJ/token and s/token as value [low, high] (declared ranges, bounds propagation; GPUs: their regime):")
    for r in rows:
        tag = f"{r['platform']} ({r['regime']})" if r.get("regime") else r["platform"]
        print(f"  {tag:28s} {r['energy_per_token_j']:.4g} [{r['energy_per_token_j_low']:.4g}, "
              f"{r['energy_per_token_j_high']:.4g}] J/token   {r['latency_per_token_s']:.4g} "
              f"[{r['latency_per_token_s_low']:.4g}, {r['latency_per_token_s_high']:.4g}] s/token")
    return 0


def cmd_validate_hw(args: argparse.Namespace) -> int:
    """Chip presets against published figures (hw_models.validation); exit 1 if a row fails."""
    import hw_models
    from hw_models.validation import peer_rows, validate, validation_markdown

    rows, ok = validate()
    peers = peer_rows(hw_models.synthetic_model_activity(hw_models.SMOLLM2_135M, tokens=8)) if args.peers else None
    print(validation_markdown(rows, peers))
    failed = [r for r in rows if r["result"] == "FAIL"]
    print(f"\n{sum(r['result'] == 'PASS' for r in rows)} passed, {len(failed)} failed, "
          f"{sum(r['result'] == 'not checked' for r in rows)} not checked")
    return 0 if ok else 1


def _energy_of_activity(args: argparse.Namespace, chips, gpus) -> int:
    """Price the Activity records of an activity file (e.g. real spiking decode) on chips and GPUs."""
    import hw_models

    from .activity_file import read_activity

    if args.trace is not None:
        raise CLIError("give either a TRACE or --activity FILE, not both")
    try:
        phases, meta = read_activity(args.activity)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e
    acts = phases.get(args.phase)
    if not acts:
        raise CLIError(f"{args.activity} holds no {args.phase!r} records (it has: {', '.join(phases) or 'none'})")
    results = hw_models.evaluate(acts, chips, gpus, mode=args.phase, regime=args.gpu_regime)
    print(f"{args.phase}: {acts[0].tokens} tokens, scheme {acts[0].scheme}, T = {acts[0].steps}, "
          f"engine {meta.get('engine', '?')}, {sum(int(a.clipped) for a in acts)} counts clipped to the window")
    print(hw_models.comparison_markdown(results, reference=gpus[0].name if gpus else results[0].platform))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Greedy generation with every linear layer running on the spike simulator (or the plain model)."""
    from .activity_file import write_activity
    from .generate import generate
    from .models import load_model

    if not args.prompt.strip():
        raise CLIError("--prompt is empty")
    if args.activity_out is not None:
        if "float" in args.engine and len(args.engine) == 1:
            raise CLIError("--activity-out needs a spiking engine (events or dense); float has no spikes")
        if Path(args.activity_out).exists() and not args.overwrite:
            raise CLIError(f"{args.activity_out} exists; pass --overwrite to replace it")
        if not Path(args.activity_out).resolve().parent.is_dir():
            raise CLIError(f"folder of {args.activity_out} does not exist")
    loaded = load_model(args.model, progress=not args.quiet)
    written = False
    for engine in args.engine:
        g = generate(loaded, args.prompt, args.max_new_tokens, engine=engine, scheme=args.scheme, T=args.T, k=args.k)
        how = "plain float model" if engine == "float" else f"{g.scheme}, T = {g.T}, k = {g.k:g}"
        print(f"[{engine}] {how}: {len(g.new_ids)} new tokens after {g.prompt_tokens} prompt tokens")
        print(f"[{engine}] prefill {g.prefill_s:.2f} s, decode {g.decode_s:.2f} s, {g.tokens_per_s:.3g} tokens/s "
              f"(decode only {g.decode_tokens_per_s:.3g} tokens/s)")
        if g.clipped:
            print(f"[{engine}] counts clipped to the window: prefill {g.clipped.get('prefill', 0)}, "
                  f"decode {g.clipped.get('decode', 0)}")
        print(f"[{engine}] text: {g.text!r}")
        if args.activity_out is not None and engine != "float" and not written:
            meta = {"engine": engine, "scheme": g.scheme, "T": g.T, "k": g.k, "model_id": loaded.model_id,
                    "prompt": g.prompt, "text": g.text, "new_ids": g.new_ids, "prompt_tokens": g.prompt_tokens}
            path = write_activity(args.activity_out, {"prefill": g.prefill, "decode": g.decode}, meta,
                                  overwrite=args.overwrite)
            print(f"activity (prefill and decode, per layer): {path}  (price it: neurosim energy --activity {path})")
            written = True
    return 0


def cmd_neurobench(args: argparse.Namespace) -> int:
    """NeuroBench v2.3 activation sparsity and synaptic operations of a trace (docs/neurobench.md)."""
    import json

    from .models import EMBEDDED_ID, load_model
    from .neurobench import metrics_markdown, neurobench_metrics

    with _open_trace(args.trace) as tr:
        model = args.model if args.model else (None if tr.model_id == EMBEDDED_ID else tr.model_id)
        loaded = load_model(model, progress=not args.quiet)
        m = neurobench_metrics(tr, loaded.model, args.scheme, args.T, weights=args.weights)
    print(json.dumps(m.summary(), indent=2) if args.format == "json" else metrics_markdown(m))
    return 0
