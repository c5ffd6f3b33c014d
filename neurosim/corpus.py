"""Corpus-wide capture and statistics, sharded across Dask workers.

A corpus (a text file with one prompt per line, or a folder of ``.txt`` files, one prompt
each) is cut into shards of consecutive prompts. Each shard is captured by one worker
into its own trace file (atomic: a shard file is either complete or absent), its
statistics are written into that file's ``/stats``, and ``manifest.json`` lists every
shard with its prompts' hash. The corpus statistics are the exact merge of the shards'
(integer counters and fixed-bin histograms: see :mod:`analysis.stats`), so they equal
the statistics of the same corpus captured in one process.

``resume=True`` skips shards whose file is complete and matches the manifest; an
interrupted run loses at most the shards that were in flight.

Engines: ``dask.distributed.LocalCluster`` by default, or an existing cluster given by its
scheduler address (the output folder must then be on a file system every worker sees);
``n_workers=0`` runs the same shard function in this process, without Dask.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from analysis.fileio import DiskFullError, commit, write_text
from analysis.stats import REPORT_WINDOW, SpikeStats, read_stats, write_stats
from analysis.trace import SpikeTrace, TraceError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
DASK_HINT = 'corpus runs need Dask: pip install "dask[distributed]"'


@dataclass
class ShardSpec:
    """One unit of work: prompts ``first .. first+len(prompts)-1`` of the corpus."""

    index: int
    first: int
    prompts: list[str]
    path: str
    digest: str


@dataclass
class CorpusResult:
    """What a corpus run produced: merged statistics, shard files, the manifest path."""

    stats: SpikeStats
    shards: list[dict[str, Any]]
    manifest: Path
    reused: int
    computed: int
    seconds: float
    stats_path: Path | None = None  # stats.h5: the merged /stats (and /stats/encoders)
    report: Path | None = None  # report.md: the merged statistics as tables

    @property
    def tokens(self) -> int:
        return sum(int(s["tokens"]) for s in self.shards)


def read_corpus(path: str | os.PathLike) -> list[str]:
    """Prompts of a corpus: non-empty lines of a text file, or the ``.txt`` files of a folder (sorted)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix == ".txt" and f.is_file())
        prompts = [f.read_text(encoding="utf-8").strip() for f in files]
    elif p.is_file():
        prompts = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
    else:
        raise FileNotFoundError(f"corpus {p} does not exist")
    prompts = [t for t in prompts if t]
    if not prompts:
        raise ValueError(f"corpus {p} holds no prompts (empty lines and empty files are skipped)")
    return prompts


def _digest(prompts: Sequence[str], settings: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for t in prompts:
        h.update(hashlib.sha256(t.encode()).digest())
    return h.hexdigest()


def plan_shards(prompts: Sequence[str], out: Path, prompts_per_shard: int, settings: dict[str, Any]) -> list[ShardSpec]:
    """Cut ``prompts`` into shards of ``prompts_per_shard`` consecutive prompts."""
    if prompts_per_shard < 1:
        raise ValueError(f"prompts_per_shard must be >= 1, got {prompts_per_shard}")
    specs = []
    for i, first in enumerate(range(0, len(prompts), prompts_per_shard)):
        chunk = list(prompts[first : first + prompts_per_shard])
        specs.append(ShardSpec(i, first, chunk, str(out / f"shard-{i:05d}.h5"), _digest(chunk, settings)))
    return specs


# ----------------------------------------------------------------------------- worker side

_MODEL_CACHE: dict[tuple, Any] = {}


def _model(model_path: str | None, device: str):
    from .models import load_model

    key = (model_path, device)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()  # one model per worker process
        _MODEL_CACHE[key] = load_model(model_path, device=device, progress=False)  # workers show no bars
    return _MODEL_CACHE[key]


def capture_shard(spec: ShardSpec, settings: dict[str, Any], loaded: Any = None) -> dict[str, Any]:
    """Capture one shard to its trace file and write its statistics into it. Runs on a worker.

    Torch runs with ``settings["threads"]`` threads so that every engine computes the same
    floating-point sums, hence the same counts, as any other.
    """
    import torch

    from .capture import capture

    threads = torch.get_num_threads()
    torch.set_num_threads(int(settings["threads"]))
    try:
        loaded = loaded or _model(settings["model"], settings["device"])
        path = Path(spec.path)
        t0 = time.perf_counter()
        # Built under a hidden name and renamed only once its statistics are in: a shard file
        # under its final name is always complete.
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            trace = capture(
                loaded, spec.prompts, staging, k=settings["k"], chunk_tokens=settings["chunk_tokens"],
                overwrite=True, progress=False, max_tokens=settings["max_tokens"],
                attrs={"corpus_shard": spec.index, "corpus_first_prompt": spec.first, "corpus_digest": spec.digest},
            )
            with trace:
                stats = SpikeStats.from_trace(trace, window=tuple(settings["window"]), progress=False)
                tokens = trace.n_tokens
            write_stats(staging, stats)
            commit(staging, path, overwrite=True)
        except DiskFullError as e:  # name the shard, not its hidden staging file
            raise DiskFullError(path, e.reason.replace(str(staging), str(path)), e.errno) from None
        finally:
            staging.unlink(missing_ok=True)
        return {
            "index": spec.index, "file": path.name, "first_prompt": spec.first, "prompts": len(spec.prompts),
            "digest": spec.digest, "tokens": int(tokens), "bytes": path.stat().st_size,
            "seconds": round(time.perf_counter() - t0, 3), "status": "done",
        }
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- client side


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    write_text(path, json.dumps(manifest, indent=1), overwrite=True)


_MANIFEST_WAY_OUT = "delete it to recompute every shard, or start over with --overwrite (overwrite=True)"
# Manifest entry fields as capture_shard writes them, with the types a resumed run relies on.
_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "index": (int,), "file": (str,), "first_prompt": (int,), "prompts": (int,), "digest": (str,),
    "tokens": (int,), "bytes": (int,), "seconds": (int, float), "status": (str,),
}


def _load_manifest(path: Path) -> dict[str, Any]:
    """Read and validate ``manifest.json``; ValueError naming the file, the fault and the way out."""

    def bad(what: str) -> ValueError:
        return ValueError(f"corpus manifest {path}: {what}; {_MANIFEST_WAY_OUT}")

    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except PermissionError:
        raise bad("permission denied") from None
    except OSError as e:
        raise bad(f"cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise bad(f"invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(m, dict):
        raise bad(f"holds a JSON {_json_type(m)} where an object is expected")
    if "version" not in m:
        raise bad("the 'version' key is missing")
    if m["version"] != MANIFEST_VERSION or isinstance(m["version"], bool):
        raise bad(f"manifest version {m['version']!r}, expected {MANIFEST_VERSION}")
    shards = m.get("shards")
    if not isinstance(shards, list):
        what = f"'shards' is a JSON {_json_type(shards)}, expected an array"
        raise bad("the 'shards' key is missing" if shards is None else what)
    seen: set[int] = set()
    for i, e in enumerate(shards):
        if not isinstance(e, dict):
            raise bad(f"shards[{i}] is a JSON {_json_type(e)}, expected an object")
        for key, types in _ENTRY_TYPES.items():
            if key not in e:
                raise bad(f"shards[{i}] lacks the {key!r} key")
            if not isinstance(e[key], types) or isinstance(e[key], bool):
                want = "a number" if float in types else "an integer" if types == (int,) else "a string"
                raise bad(f"shards[{i}].{key} is a JSON {_json_type(e[key])}, expected {want}")
        if e["index"] in seen:
            raise bad(f"shard index {e['index']} is listed twice")
        seen.add(e["index"])
    return m


def _json_type(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(v), type(v).__name__)


def _shard_complete(out: Path, entry: dict[str, Any], spec: ShardSpec) -> bool:
    """A shard counts as done only if its file opens, matches the plan, its datasets pass their
    checksums and its /stats their hash."""
    if entry.get("status") != "done" or entry.get("digest") != spec.digest:
        return False
    path = Path(spec.path)
    if entry.get("file") != path.name:  # the manifest names no other file than the plan's
        return False
    try:
        with SpikeTrace.open(path) as tr:
            ok = tr.attrs.get("corpus_digest") == spec.digest
            if ok:
                tr.verify_checksums()
        read_stats(path)
    except (OSError, TraceError, ValueError, KeyError):
        return False
    return ok


def _remove_stale_temps(out: Path, before: float) -> list[Path]:
    """Delete shard temp files (``.shard-*.tmp`` and the trace writer's ``..shard-*.tmp``) not
    modified since ``before`` (epoch s): left by killed workers of earlier runs. Called once
    every shard of this run is done, so no live writer of this run owns one."""
    removed = []
    for p in out.glob(".*shard-*.tmp"):
        try:
            if p.is_file() and p.stat().st_mtime < before:
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


def run_corpus(
    corpus: str | os.PathLike | Sequence[str],
    out: str | os.PathLike,
    *,
    model: str | None = None,
    k: float = 3.0,
    window: tuple[str, int] = REPORT_WINDOW,
    prompts_per_shard: int = 4,
    n_workers: int = 2,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
    chunk_tokens: int = 256,
    max_tokens: int | None = None,
    threads: int = 1,
    loaded: Any = None,
    progress: bool = True,
    on_shard: Callable[[dict[str, Any]], None] | None = None,
) -> CorpusResult:
    """Capture a corpus shard by shard on Dask workers and merge the statistics exactly.

    Args:
        corpus: a corpus path (see :func:`read_corpus`) or a list of prompts.
        out: output folder: ``shard-NNNNN.h5`` files and ``manifest.json``.
        model: model path (None: the embedded SmolLM2-135M).
        n_workers: local worker processes (``LocalCluster``); 0 runs in this process.
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``); overrides
            ``n_workers``. Every worker must see ``out`` and the model at the same paths.
        resume: keep the shards already complete in ``out`` and compute the rest.
        overwrite: start over in a folder that already holds a run.
        threads: torch threads per shard capture (same everywhere for bit-identical counts).
        loaded: an already loaded model, used only when ``n_workers == 0``.
        on_shard: called with each shard's manifest entry as it completes.

    Returns:
        :class:`CorpusResult` with the merged :class:`analysis.stats.SpikeStats`.
    """
    t0 = time.perf_counter()
    started = time.time()
    prompts = list(corpus) if isinstance(corpus, (list, tuple)) else read_corpus(corpus)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"model": model, "k": float(k), "window": list(window), "chunk_tokens": int(chunk_tokens),
                "max_tokens": max_tokens, "device": device, "threads": int(threads)}
    plan_settings = {key: settings[key] for key in ("model", "k", "window", "max_tokens")}
    specs = plan_shards(prompts, out, prompts_per_shard, plan_settings)
    mpath = out / MANIFEST
    done: dict[int, dict[str, Any]] = {}
    if mpath.exists():
        if resume:
            old = _load_manifest(mpath)
            entries = {int(e["index"]): e for e in old.get("shards", [])}
            done = {s.index: entries[s.index] for s in specs
                    if s.index in entries and _shard_complete(out, entries[s.index], s)}
        elif not overwrite:
            raise FileExistsError(f"{out} already holds a corpus run; pass resume=True (--resume) or overwrite=True")
    manifest = {"version": MANIFEST_VERSION, "prompts": len(prompts), "settings": settings,
                "shards": sorted(done.values(), key=lambda e: e["index"])}
    _write_manifest(mpath, manifest)
    todo = [s for s in specs if s.index not in done]
    reused = len(done)

    def record(entry: dict[str, Any]) -> None:
        done[entry["index"]] = entry
        manifest["shards"] = sorted(done.values(), key=lambda e: e["index"])
        _write_manifest(mpath, manifest)
        if on_shard:
            on_shard(entry)

    bar = _bar(len(specs), reused, progress)
    try:
        if todo and n_workers == 0 and scheduler is None:
            for spec in todo:
                record(capture_shard(spec, settings, loaded))
                bar.update(1)
        elif todo:
            _run_dask(todo, settings, n_workers, scheduler, record, bar)
    finally:
        bar.close()
    _remove_stale_temps(out, started)
    stats = SpikeStats(window=tuple(window))
    for spec in specs:  # merge in corpus order (any order gives the same result)
        stats.merge(read_stats(spec.path))
    seconds = time.perf_counter() - t0
    tokens = sum(int(s["tokens"]) for s in manifest["shards"])
    stats_path, report = write_corpus_report(out, stats, prompts=len(prompts), shards=len(specs), tokens=tokens,
                                             settings=settings)
    return CorpusResult(stats, manifest["shards"], mpath, reused, len(todo), seconds, stats_path, report)


CORPUS_STATS = "stats.h5"
CORPUS_REPORT = "report.md"


def write_corpus_report(out: Path, stats: SpikeStats, *, prompts: int, shards: int, tokens: int,
                        settings: dict[str, Any]) -> tuple[Path, Path]:
    """Write the merged statistics into ``out``: ``stats.h5`` (/stats, as in a trace) and ``report.md``."""
    from analysis.compare import compare_encoders, comparison_caption, comparison_markdown
    from analysis.report import headline_markdown, role_markdown

    stats_path = write_stats(None, stats, out=out / CORPUS_STATS, overwrite=True)
    s = stats.summary()
    model = settings["model"] or "SmolLM2-135M-Instruct (embedded)"
    rows = compare_encoders(stats)
    text = "\n\n".join([
        "# neurosim corpus report",
        f"{prompts} prompts in {shards} shards, {tokens} tokens, {s['layers']} layers; model {model}, "
        f"k = {settings['k']:g}. Statistics merged exactly over the shards (`{CORPUS_STATS}`, group `/stats`; "
        f"read it with `analysis.stats.read_stats`). Window: {s['window_scheme']}, T = {s['window_steps']} steps; "
        f"{s['clipped_fraction']:.2%} of counts do not fit it and are clipped.",
        "## Headline numbers", headline_markdown(stats, "this corpus"),
        "## Per role", role_markdown(stats),
        "## Encoders", comparison_caption(rows), comparison_markdown(rows),
        "## Caveats",
        "Statistics of the model's activations quantized with the SpikingBrain rule (s = round(x / V_th), "
        "V_th = mean|x| / k), not of a model trained or converted for spiking; the SpikingBrain-7B column is the "
        "report's (arXiv:2509.05276), for a much larger model on other text.",
    ]) + "\n"
    report = out / CORPUS_REPORT
    write_text(report, text, overwrite=True)
    return stats_path, report


def _bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="corpus shards", unit="shard", disable=None if enabled else True)


# A run on a cluster with no worker connected gives up after this long (seconds): the shards
# done so far stay in the manifest for --resume. The environment variable overrides it.
NO_WORKERS_TIMEOUT_S = 300.0
NO_WORKERS_TIMEOUT_ENV = "NEUROSIM_NO_WORKERS_TIMEOUT"
_POLL_S = 0.1  # how often finished shard futures are collected
_WORKER_CHECK_S = 2.0  # how often the scheduler is asked whether any worker is connected


def _no_workers_timeout() -> float:
    env = os.environ.get(NO_WORKERS_TIMEOUT_ENV, "").strip()
    try:
        value = float(env) if env else NO_WORKERS_TIMEOUT_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{NO_WORKERS_TIMEOUT_ENV}={env!r} is not a positive number of seconds")
    return value


def _run_dask(todo: list[ShardSpec], settings: dict[str, Any], n_workers: int, scheduler: str | None,
              record: Callable[[dict[str, Any]], None], bar: Any) -> None:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:
        raise ImportError(DASK_HINT) from e
    timeout = _no_workers_timeout()
    if scheduler:
        try:
            client, cluster = Client(scheduler), None
        except OSError as e:
            raise OSError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    else:
        if n_workers < 1:
            raise ValueError(f"n_workers must be >= 0, got {n_workers}")
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    pending: dict[Any, ShardSpec] = {}
    try:
        pending = {client.submit(capture_shard, s, settings, key=f"shard-{s.index}-{s.digest[:12]}", pure=False): s
                   for s in todo}
        _collect(client, pending, record, bar, scheduler or "the local cluster", timeout)
    finally:
        if pending:  # stop shards nobody will record (the scheduler may outlive this client)
            with contextlib.suppress(Exception):
                client.cancel(list(pending))
        client.close()
        if cluster is not None:
            cluster.close()


def _collect(client: Any, pending: dict[Any, ShardSpec], record: Callable[[dict[str, Any]], None], bar: Any,
             where: str, timeout: float) -> None:
    """Record each shard as its future finishes; ``pending`` shrinks to the shards not recorded.

    A worker lost mid-shard is the scheduler's to handle (it reruns the shard elsewhere). A
    shard that fails is reported once every other shard has finished and been recorded, so
    that ``--resume`` keeps them; with no worker connected for ``timeout`` s the run stops.
    """
    from distributed import KilledWorker

    n = len(pending)
    failures: list[tuple[ShardSpec, BaseException]] = []
    idle_since: float | None = None
    next_check = 0.0
    while pending:
        finished = [f for f in pending if f.status != "pending"]
        for fut in finished:
            spec = pending.pop(fut)
            if fut.status == "finished":
                record(fut.result())
                bar.update(1)
            elif fut.status == "error":
                failures.append((spec, fut.exception()))
            else:  # cancelled (e.g. the scheduler connection was lost) or lost
                failures.append((spec, RuntimeError(f"Dask reports the shard {fut.status}")))
        if finished:
            continue
        now = time.monotonic()
        if now >= next_check:
            next_check = now + _WORKER_CHECK_S
            try:
                workers = client.nthreads()
            except Exception as e:  # noqa: BLE001 - any comm failure means the same to the user
                raise RuntimeError(f"lost the Dask scheduler at {where} ({e or type(e).__name__}); "
                                   f"{len(pending)} of {n} shards are not computed: rerun with --resume") from None
            if workers:
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= timeout:
                raise RuntimeError(
                    f"no Dask worker has been connected to {where} for {timeout:g} s; {len(pending)} of {n} "
                    f"shards are not computed ({n - len(pending) - len(failures)} done are kept): start workers, "
                    f"then rerun with --resume"
                )
        time.sleep(_POLL_S)
    if failures:
        spec, err = failures[0]
        others = f" (and {len(failures) - 1} more shards)" if len(failures) > 1 else ""
        if isinstance(err, KilledWorker):
            try:
                detail = f"{err.allowed_failures + 1} tried, the last at {err.last_worker.address}"
            except Exception:  # noqa: BLE001 - another distributed version: its own words
                detail = str(err)
            raise RuntimeError(
                f"shard {spec.index} ({Path(spec.path).name}){others}: every Dask worker that ran it died "
                f"({detail}; see the worker logs); the other shards are kept: rerun with --resume"
            ) from None
        if isinstance(err, RuntimeError) and str(err).startswith("Dask reports"):
            raise RuntimeError(f"shard {spec.index} ({Path(spec.path).name}){others}: {err}; rerun with --resume")
        raise err
