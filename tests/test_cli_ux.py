"""What a new user meets on the command line (issue 14): fast refusals, one sparsity,
the window and clipping stated, names, quiet output, zero-size inputs."""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import neurosim.models
from analysis.trace import LayerInfo, SpikeTrace
from neurosim.cli import main

LAYER = "model.layers.0.mlp.down_proj"


@pytest.fixture()
def no_model(monkeypatch):
    """Any attempt to load a model fails the test: refusals must come before loading."""

    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(neurosim.models, "load_model", refuse)


@pytest.fixture()
def trace_file(tmp_path) -> Path:
    """A small synthetic trace file (Laplace counts, two prompts with their text)."""
    rng = np.random.default_rng(3)
    counts = np.round(rng.laplace(size=(12, 24)) * 3).astype(np.int16)
    vth = rng.uniform(0.1, 0.3, 12).astype(np.float32)
    tr = SpikeTrace.from_arrays(
        model_id="synthetic", k=3.0, tokens=np.arange(12), prompt_starts=[0, 7],
        prompt_text=["First   prompt about\nrivers.", "Second prompt."],
        layers=[(LayerInfo(LAYER, "down", 24, 10, 0), counts, vth)],
    )
    return tr.save(tmp_path / "t.h5")


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("neurosim: error:") and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------- point 4: fast refusals


def test_refusals_do_not_import_torch(tmp_path):
    """Checking arguments imports neither torch nor the model: a bad value is refused at once."""
    import subprocess
    import sys

    import encoders
    from neurosim.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    schemes = next(a for a in run._actions if a.dest == "schemes")
    assert list(schemes.choices) == list(encoders.SCHEMES)  # read from the registry
    code = ("import sys; from neurosim.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    for argv in (["run", "--prompt", "hi", "--k", "0", "--out", str(tmp_path / "o")],
                 ["energy", str(tmp_path / "t.h5"), "--T", "0"],
                 ["demo", "--tokens", "0", "--out", str(tmp_path / "d")]):
        r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.startswith("neurosim: error:"), r.stderr


def test_bad_values_are_refused_before_the_model_loads(no_model, tmp_path, capsys):
    bad_text = tmp_path / "latin1.txt"
    bad_text.write_bytes("caf\xe9 au lait".encode("latin-1"))
    out = str(tmp_path / "o")
    cases = [
        (["run", "--prompt", "hi", "--k", "0", "--out", out], "--k must be a positive number"),
        (["run", "--prompt", "hi", "--k", "-2", "--out", out], "--k must be a positive number"),
        (["run", "--prompt", "hi", "--k", "nan", "--out", out], "--k must be a positive number"),
        (["run", "--prompt", "hi", "--max-tokens", "0", "--out", out], "--max-tokens must be at least 1"),
        (["run", "--text-file", str(bad_text), "--out", out], "is not UTF-8"),
        (["run", "--text-file", str(tmp_path / "none.txt"), "--out", out], "does not exist"),
        (["energy", str(tmp_path / "t.h5"), "--T", "0"], "--T must be at least 1"),
        (["energy", str(tmp_path / "t.h5"), "--T", "99"], "more than the"),
        (["sweep-k", "--prompt", "hi", "--ks", "3", "0"], "--ks must be a positive number"),
        (["export", str(tmp_path / "t.h5"), "--format", "nir", "--layer", LAYER, "--out", out],
         "--format nir needs the layer's weights"),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append((["run", "--prompt", "hi", "--device", "cuda", "--out", out], "sees no CUDA GPU"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in _one_line(capsys.readouterr().err), argv
    assert list(tmp_path.iterdir()) == [bad_text]  # nothing written


# ----------------------------------------------------------------------------- point 5: zero-size inputs


def test_zero_size_inputs_fail_cleanly(tmp_path, trace_file, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail the test
        for argv, message in [
            (["demo", "--out", str(tmp_path / "d"), "--tokens", "0"], "--tokens must be at least 1"),
            (["demo", "--out", str(tmp_path / "d"), "--channels", "0"], "--channels must be at least 1"),
            (["raster", str(trace_file), "--layer", LAYER, "--T", "0", "--out", str(tmp_path / "r.png")],
             "--T must be at least 1"),
            (["raster", str(trace_file), "--layer", LAYER, "--neurons", "0", "--out", str(tmp_path / "r.png")],
             "--neurons must be at least 1"),
            (["raster", str(trace_file), "--layer", LAYER, "--tokens", "0", "--out", str(tmp_path / "r.png")],
             "--tokens must be at least 1"),
        ]:
            assert main(argv) == 2, argv
            assert message in _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]  # no empty output folder, no file
    from analysis.plots import plot_raster

    with pytest.raises(ValueError, match="T must be a positive"):
        plot_raster(np.ones((4, 8), np.int32), T=0)


def test_demo_refusal_leaves_no_folder_and_failure_after_checks_creates_none(tmp_path, capsys):
    out = tmp_path / "new"
    assert main(["demo", "--out", str(out), "--k", "0"]) == 2
    assert not out.exists()


# ----------------------------------------------------------------------------- point 2: window, clipping, sparsity


def _demo_table(text: str) -> dict[str, tuple[int, int, float]]:
    rows = {}
    import encoders

    names = "|".join(sorted(map(re.escape, encoders.SCHEMES), key=len, reverse=True))
    for m in re.finditer(rf"^({names})\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)$", text, re.M):
        rows[m.group(1)] = (int(m.group(2)), int(m.group(4)), float(m.group(5)))
    return rows


def test_demo_and_compare_encoders_share_one_sparsity(tmp_path, capsys):
    import encoders
    from analysis.compare import compare_encoders, train_sparsity

    assert main(["demo", "--out", str(tmp_path / "d"), "--tokens", "16", "--channels", "64", "--seed", "5"]) == 0
    text = capsys.readouterr().out
    assert "lossless T (nothing clipped)" in text and "sign-split" in text
    demo = _demo_table(text)
    x = np.random.default_rng(5).standard_normal((16, 64)).astype(np.float32)
    counts, _ = encoders.spike_counts(x, k=3.0)
    rows = {r["scheme"]: r for r in compare_encoders(counts.numpy() if hasattr(counts, "numpy") else counts)}
    assert set(demo) == set(rows) == set(encoders.SCHEMES)
    for scheme, (T, spikes, sparsity) in demo.items():
        r = rows[scheme]
        assert T == r["steps_needed"] and spikes == r["events"]
        assert sparsity == pytest.approx(r["sparsity"], abs=5e-4)  # same definition, printed to 3 decimals
        assert r["sparsity"] == pytest.approx(train_sparsity(scheme, spikes, counts.numel() if hasattr(counts, "numel")
                                                             else counts.size, T))
    # binary is sign-split: 2 lines per channel, so its sparsity is not the 1-line figure
    T, spikes, _ = demo["binary"]
    assert rows["binary"]["sparsity"] == pytest.approx(1 - spikes / (2 * 16 * 64 * T))


def test_compare_and_export_state_window_and_clipping(tmp_path, trace_file, capsys):
    assert main(["compare-encoders", str(trace_file), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "lossless T (nothing clipped)" in text and re.search(r"bitwise-signed T = 3: \d+\.\d+%", text)
    assert main(["export", str(trace_file), "--format", "aer", "--layer", LAYER, "--out", str(tmp_path / "a.aer")]) == 0
    text = capsys.readouterr().out
    T = int(re.search(r"T = (\d+) steps per token \(the layer's lossless T", text).group(1))
    from neurosim.export import read_aer

    meta = read_aer(tmp_path / "a.aer").meta
    assert meta["T"] == T >= 4 and meta["T_rule"].startswith("lossless")  # Laplace x 3: counts beyond 7
    assert main(["export", str(trace_file), "--format", "aer", "--layer", LAYER, "--T", "6",
                 "--out", str(tmp_path / "b.aer")]) == 0
    assert "T = 6 steps per token (given by --T)" in capsys.readouterr().out
    assert read_aer(tmp_path / "b.aer").meta["T_rule"] == "given"


# ----------------------------------------------------------------------------- point 7: names


def test_gpu_short_names_everywhere(tmp_path, capsys):
    from neurosim.pipeline import gpu_choices, resolve_platforms

    assert gpu_choices() == ["a100", "h100", "h200"]
    _, gpus = resolve_platforms([], ["h100", "a100_sxm"])
    assert [g.name for g in gpus] == ["h100", "a100"]  # tables and plots print spec.name
    assert main(["run", "--prompt", "hi", "--gpu", "v100", "--out", str(tmp_path / "o")]) == 1
    err = _one_line(capsys.readouterr().err)
    assert "a100, h100, h200" in err and "_sxm" not in err


def test_export_tonic_alias_and_nir_needs_model(tmp_path, trace_file, capsys, no_model):
    from neurosim.export import read_tonic

    assert main(["export", str(trace_file), "--format", "tonic", "--layer", LAYER, "--out", str(tmp_path)]) == 0
    path = tmp_path / f"{LAYER}.bitwise-signed.npy"
    assert path.is_file() and read_tonic(path).counts().shape == (12, 24)
    capsys.readouterr()
    assert main(["export", str(trace_file), "--format", "nir", "--layer", LAYER, "--out", str(tmp_path / "x.nir")]) == 2
    assert "--model" in _one_line(capsys.readouterr().err) and not (tmp_path / "x.nir").exists()


# ----------------------------------------------------------------------------- point 6: quiet, terminals only


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_gguf_bar_follows_quiet_and_terminal(monkeypatch):
    import importlib
    import inspect
    import sys

    mod = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    assert re.search(r"\btqdm\(", inspect.getsource(mod))  # the bar we silence is this module's tqdm
    original = mod.tqdm
    for stream_cls, progress, shown in ((_Terminal, True, True), (_Terminal, False, False), (io.StringIO, True, False)):
        stream = stream_cls()
        monkeypatch.setattr(sys, "stderr", stream)
        with neurosim.models._gguf_progress(progress):
            for _ in mod.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
                pass
        assert ("Converting" in stream.getvalue()) is shown, (stream_cls, progress)
        assert mod.tqdm is original  # restored


def test_corpus_workers_load_without_bars(monkeypatch):
    import neurosim.corpus as corpus

    seen = {}
    monkeypatch.setattr(neurosim.models, "load_model", lambda *a, **k: seen.update(k) or object())
    monkeypatch.setattr(corpus, "_MODEL_CACHE", {})
    corpus._model(None, "cpu")
    assert seen["progress"] is False


def test_bars_only_on_a_terminal(monkeypatch):
    """Every bar is built with tqdm's disable=None (terminal only) unless progress is off."""
    import sys

    from analysis.stats_accumulator import _progress

    for stream_cls, shown in ((_Terminal, True), (io.StringIO, False)):
        stream = stream_cls()
        monkeypatch.setattr(sys, "stderr", stream)
        list(_progress(range(3), 3, "statistics", True))
        assert ("statistics" in stream.getvalue()) is shown


@pytest.mark.slow
def test_capture_bar_terminal_only_in_tokens(smollm, tmp_path, monkeypatch):
    import sys

    from neurosim.capture import capture

    for i, (stream_cls, shown) in enumerate(((_Terminal, True), (io.StringIO, False))):
        stream = stream_cls()
        monkeypatch.setattr(sys, "stderr", stream)
        capture(smollm, "Rivers run to the sea.", tmp_path / f"c{i}.h5", progress=True).close()
        text = stream.getvalue()
        assert ("capture" in text) is shown
        if shown:  # a rate in tokens, never scaled to "1.67k/s"
            assert re.search(r"tok/s|s/tok", text) and not re.search(r"\d[kMG](tok)?/s", text)


# ----------------------------------------------------------------------------- point 9: the prompt in inspect


def test_inspect_shows_the_prompt_and_window(trace_file, capsys):
    from analysis.stats import SpikeStats, write_stats

    with SpikeTrace.open(trace_file) as tr:
        stats = SpikeStats.from_trace(tr, progress=False)
    write_stats(trace_file, stats)
    assert main(["inspect", str(trace_file)]) == 0
    text = capsys.readouterr().out
    assert "prompt 0: 'First prompt about rivers.'" in text and "prompt 1: 'Second prompt.'" in text
    assert re.search(r"stats \(bitwise-signed, T = 3, \d+\.\d+% of counts clipped\)", text)
