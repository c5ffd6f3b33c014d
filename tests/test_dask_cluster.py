"""Corpus runs on a real Dask cluster (issue 15, point 8): a ``dask scheduler`` and two
``dask worker`` processes on the loopback interface, started and torn down by the test; one
worker is killed (SIGKILL) while it writes a shard, and the run still ends with statistics
identical to an in-process run and every shard complete."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("distributed")

from analysis.stats import read_stats  # noqa: E402
from analysis.trace import SpikeTrace  # noqa: E402
from neurosim.cli import main  # noqa: E402
from neurosim.corpus import run_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "The lighthouse keeper counted the ships that passed before dawn.",
    "Water boils at a lower temperature high in the mountains.",
    "The choir sang the old hymn twice because the bishop was late.",
]
START_TIMEOUT = 120  # s: scheduler file written, both workers registered
RUN_TIMEOUT = 600  # s: the whole corpus run (model load on each worker under load included)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + 20
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path):
    """``(address, [worker Popen, worker Popen])`` of a scheduler and two nanny-less workers on 127.0.0.1."""
    from distributed import Client

    sched_file = tmp_path / "scheduler.json"
    log = tmp_path / "cluster-logs"
    log.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        with open(log / f"{name}.log", "wb") as f:
            p = subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=tmp_path, env=_env(),
                                 stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs.append(p)
        return p

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(sched_file))
        deadline = time.monotonic() + START_TIMEOUT
        while not sched_file.exists() and time.monotonic() < deadline:
            assert procs[0].poll() is None, (log / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = [
            start(f"worker{i}", "worker", "--scheduler-file", str(sched_file), "--host", "127.0.0.1",
                  "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}",
                  "--local-directory", str(tmp_path / f"w{i}"), "--death-timeout", "60")
            for i in range(2)
        ]
        with Client(address, timeout=START_TIMEOUT) as c:
            c.wait_for_workers(2, timeout=START_TIMEOUT)
        yield address, workers, log
    finally:
        _stop(procs[1:])  # workers first, then the scheduler
        _stop(procs[:1])


def _writer_of(pids: list[int], folder: Path) -> int | None:
    """The pid among ``pids`` that holds a file of ``folder`` open (a shard being written)."""
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(folder) + os.sep) and "shard-" in target:
                return pid
    return None


def _killer(workers: list[subprocess.Popen], out: Path, all_of_them: bool, after_shards: int):
    """A thread that SIGKILLs a worker caught writing a shard of ``out`` (every worker if
    ``all_of_them``) once the manifest lists ``after_shards`` shards; the pids it killed."""
    killed: list[int] = []
    stop = threading.Event()

    def done_shards() -> int:
        try:
            return len(json.loads((out / "manifest.json").read_text())["shards"])
        except (OSError, ValueError, KeyError):
            return 0

    def run() -> None:
        while not stop.is_set():
            pid = _writer_of([w.pid for w in workers], out)
            if pid is not None and done_shards() >= after_shards:
                for w in workers if all_of_them else [w for w in workers if w.pid == pid]:
                    os.kill(w.pid, signal.SIGKILL)
                    killed.append(w.pid)
                return
            time.sleep(0.02)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, stop, killed


def _cli_run(args: list[str], limit: float) -> tuple[bool, list[int]]:
    """``neurosim ARGS`` in a thread; (finished within ``limit`` s, [exit code])."""
    rc: list[int] = []
    runner = threading.Thread(target=lambda: rc.append(main(args)), daemon=True)
    runner.start()
    runner.join(limit)
    return not runner.is_alive(), rc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    p = tmp_path_factory.mktemp("dask_corpus") / "prompts.txt"
    p.write_text("\n".join(PROMPTS) + "\n")
    return p


@pytest.fixture(scope="module")
def single(corpus, smollm, tmp_path_factory):
    """The same corpus in one process (what ``--workers 0`` runs), same settings."""
    return run_corpus(corpus, tmp_path_factory.mktemp("single"), prompts_per_shard=1, n_workers=0, loaded=smollm,
                      progress=False)


def _check_complete(out: Path, single) -> None:
    """Every shard complete (opens, carries /stats, matches the plan) and the merge exact."""
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["file"] for s in manifest["shards"]] == [f"shard-{i:05d}.h5" for i in range(3)]
    assert [(s["digest"], s["tokens"]) for s in manifest["shards"]] == \
        [(s["digest"], s["tokens"]) for s in single.shards]
    merged = None
    for s in manifest["shards"]:
        path = out / s["file"]
        with SpikeTrace.open(path) as tr:
            assert tr.attrs["corpus_digest"] == s["digest"] and tr.n_tokens == s["tokens"]
        st = read_stats(path)
        merged = st if merged is None else (merged.merge(st) or merged)
    assert merged == single.stats  # exact: integer counters and fixed-bin histograms
    finals = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert finals == ["manifest.json", "report.md", "shard-00000.h5", "shard-00001.h5", "shard-00002.h5", "stats.h5"]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see which worker writes a shard")
def test_scheduler_address_with_a_worker_killed_mid_shard(cluster, corpus, single, tmp_path, capsys):
    address, workers, log = cluster
    out = tmp_path / "run"
    watcher, stop, killed = _killer(workers, out, all_of_them=False, after_shards=0)
    finished, rc = _cli_run(["run", "--corpus", str(corpus), "--out", str(out), "--scheduler", address,
                             "--prompts-per-shard", "1", "--quiet"], RUN_TIMEOUT)
    stop.set()
    watcher.join(5)
    logs = {p.name: p.read_text(errors="replace")[-2000:] for p in log.iterdir()}
    assert finished, f"corpus run did not finish in {RUN_TIMEOUT} s; logs: {logs}"
    captured = capsys.readouterr()
    assert rc == [0], captured.err
    assert len(killed) == 1, "no worker was caught writing a shard"
    victim = next(w for w in workers if w.pid == killed[0])
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert "shards: 3 (0 reused, 3 computed)" in captured.out
    from analysis.tables import headline_line

    assert headline_line(single.stats.summary(), single.stats.window) in captured.out
    _check_complete(out, single)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see which worker writes a shard")
def test_every_worker_killed_stops_the_run_and_resume_completes_it(cluster, corpus, single, smollm, tmp_path,
                                                                   capsys, monkeypatch):
    address, workers, log = cluster
    monkeypatch.setenv("NEUROSIM_NO_WORKERS_TIMEOUT", "6")
    out = tmp_path / "run"
    watcher, stop, killed = _killer(workers, out, all_of_them=True, after_shards=1)
    finished, rc = _cli_run(["run", "--corpus", str(corpus), "--out", str(out), "--scheduler", address,
                             "--prompts-per-shard", "1", "--quiet"], RUN_TIMEOUT)
    stop.set()
    watcher.join(5)
    assert finished, "the run waited forever on a cluster without workers"
    err = capsys.readouterr().err
    assert len(killed) == 2, "the workers were not caught writing a shard"
    assert rc == [1] and err.count("\n") == 1, err
    assert f"no Dask worker has been connected to {address} for 6 s" in err and "rerun with --resume" in err
    manifest = json.loads((out / "manifest.json").read_text())
    kept = [s["file"] for s in manifest["shards"]]
    assert 1 <= len(kept) < 3
    for name in kept:  # what the manifest keeps is complete
        read_stats(out / name)
    # nothing half-written under a final name: a shard file is complete or absent
    for p in out.glob("shard-*.h5"):
        with SpikeTrace.open(p):
            pass
    # --resume (here in this process) computes the rest; the result equals a clean run
    again = run_corpus(corpus, out, prompts_per_shard=1, n_workers=0, loaded=smollm, resume=True, progress=False)
    assert again.reused == len(kept) and again.computed == 3 - len(kept)
    _check_complete(out, single)


def test_unreachable_scheduler_is_named(tmp_path, capsys):
    import socket

    import dask

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    corpus = tmp_path / "prompts.txt"
    corpus.write_text("one prompt\n")
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        rc = main(["run", "--corpus", str(corpus), "--out", str(tmp_path / "run"), "--scheduler", address, "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert err.startswith(f"neurosim: error: cannot reach the Dask scheduler at {address}: ")
    assert not list((tmp_path / "run").glob("shard-*"))


# ------------------------------------------------------------ how finished shards are collected


class _Future:
    """Stands for a dask Future whose state the test script sets: status after ``polls`` checks."""

    def __init__(self, status: str, value=None, polls: int = 0):
        self._status, self.value, self.polls = status, value, polls

    @property
    def status(self) -> str:
        if self.polls > 0:
            self.polls -= 1
            return "pending"
        return self._status

    def result(self):
        return self.value

    def exception(self):
        return self.value


class _Client:
    def __init__(self, workers: dict):
        self.workers = workers

    def nthreads(self):
        return self.workers


def _spec(i: int):
    from neurosim.corpus import ShardSpec

    return ShardSpec(i, i, ["p"], f"/x/shard-{i:05d}.h5", "d" * 64)


class _Bar:
    def update(self, n: int) -> None:
        pass


def test_failed_shard_is_reported_after_the_others_are_recorded():
    from neurosim.corpus import _collect

    recorded = []
    pending = {_Future("error", ValueError("shard 0 broke")): _spec(0),
               _Future("finished", {"index": 1}, polls=3): _spec(1),
               _Future("finished", {"index": 2}, polls=6): _spec(2)}
    with pytest.raises(ValueError, match="shard 0 broke"):
        _collect(_Client({"w": 1}), pending, recorded.append, _Bar(), "tcp://x", 60)
    assert recorded == [{"index": 1}, {"index": 2}] and not pending


def test_shard_whose_workers_all_died_names_it_and_the_way_out():
    from distributed import KilledWorker

    from neurosim.corpus import _collect

    recorded = []
    pending = {_Future("error", KilledWorker("shard-1-abc", SimpleNamespace(address="tcp://127.0.0.1:1"), 3)): _spec(1),
               _Future("finished", {"index": 0}, polls=2): _spec(0)}
    with pytest.raises(RuntimeError, match=r"shard 1 \(shard-00001\.h5\): every Dask worker that ran it died "
                                           r"\(4 tried, the last at tcp://127\.0\.0\.1:1; see the worker logs\); "
                                           r".*rerun with --resume"):
        _collect(_Client({"w": 1}), pending, recorded.append, _Bar(), "tcp://x", 60)
    assert recorded == [{"index": 0}]


def test_no_worker_connected_stops_after_the_timeout(monkeypatch):
    import neurosim.corpus as corpus_mod

    monkeypatch.setattr(corpus_mod, "_WORKER_CHECK_S", 0.01)
    recorded = []
    pending = {_Future("finished", {"index": 0}): _spec(0), _Future("finished", None, polls=10**9): _spec(1)}
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"no Dask worker has been connected to tcp://x for 0\.3 s; 1 of 2 shards "
                                           r"are not computed \(1 done are kept\)"):
        corpus_mod._collect(_Client({}), pending, recorded.append, _Bar(), "tcp://x", 0.3)
    assert 0.3 <= time.monotonic() - t0 < 10 and recorded == [{"index": 0}]
    monkeypatch.setenv(corpus_mod.NO_WORKERS_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="NEUROSIM_NO_WORKERS_TIMEOUT='soon' is not a positive number"):
        corpus_mod._no_workers_timeout()
