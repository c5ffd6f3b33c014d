"""The neurosim command line: exit codes, one-line errors, the demo's output."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from neurosim import __version__
from neurosim.cli import main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out
    assert main([]) == 2  # no command: help, usage exit code


def test_console_script_is_installed():
    r = subprocess.run([sys.executable, "-m", "neurosim.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "demo" in r.stdout


def test_demo_prints_schemes_and_writes_raster(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--tokens", "32", "--channels", "256"]) == 0
    text = capsys.readouterr().out
    for scheme in ("binary", "ternary", "bitwise", "bitwise-signed", "bitwise-twos"):
        assert scheme in text
    png = out / "raster.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_demo_refuses_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("precious")
    assert main(["demo", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neurosim: error:") and "--overwrite" in err and "Traceback" not in err
    assert (tmp_path / "keep.txt").read_text() == "precious"


# ----------------------------------------------------------------------------- real model


@pytest.fixture()
def fast_model(smollm, monkeypatch):
    """Commands load the model through neurosim.models.load_model: hand them the session's."""
    import neurosim.models

    monkeypatch.setattr(neurosim.models, "load_model", lambda *a, **k: smollm)
    return smollm


@pytest.mark.slow
def test_run_end_to_end(fast_model, tmp_path, capsys):
    import h5py

    out = tmp_path / "run"
    rc = main(["run", "--prompt", "Spiking neurons send events only when they fire.", "--schemes",
               "bitwise-signed", "--chip", "loihi2", "truenorth", "--gpu", "h100", "--out", str(out), "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "loihi2" in text and "h100" in text and "h100_sxm" not in text and "sparsity" in text
    assert re.search(r"window: bitwise-signed, T = 3 steps; \d+\.\d% of counts do not fit it", text)
    assert (out / "report.md").is_file() and (out / "trace.h5").is_file()
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 6 and "Energy and latency per token" in page
    md = (out / "report.md").read_text()
    assert "| prompt | Spiking neurons send events only when they fire. |" in md
    assert md.index("## What this run shows, and caveats") > md.index("## Energy and latency per token")
    assert "Clipping:" in md and "Not a spiking-trained model" in md and "h100_sxm" not in md
    # issue 14.1: tables scroll in their box, carry a note, human headers, no per-step lists
    assert page.count("<div class='scroll'>") >= 5 and page.count("<p class='note'>") >= 5
    assert "firing_rate_per_step" not in page and "events_per_token_at_budget" not in page
    assert "bitwise-naf + delta" in page and "temporal sparsity" in page
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert {"raster.png", "count_histogram.png", "energy_breakdown.png", "encoder_comparison.png"} <= set(pngs)
    with h5py.File(out / "trace.h5", "r") as f:
        assert "stats" in f and len(f["layers"]) == 210
    assert not list(tmp_path.glob(".run.*"))  # no temporary folder left behind
    # the same folder again: refused, and the finished run is untouched
    before = (out / "report.md").read_text()
    assert main(["run", "--prompt", "x", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and (out / "report.md").read_text() == before


@pytest.mark.slow
def test_run_prompt_longer_than_context_leaves_nothing(fast_model, tmp_path, capsys):
    big = tmp_path / "big.txt"
    big.write_text("neuron " * 9000)
    out = tmp_path / "never"
    assert main(["run", "--text-file", str(big), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "context" in err and "max_tokens" in err and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".never.*"))


def test_run_errors_before_any_work(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--prompt", "hi", "--chip", "loihi9", "--out", str(out)]) == 1
    assert "unknown chip preset 'loihi9'" in capsys.readouterr().err
    assert main(["run", "--prompt", "hi", "--gpu", "v100", "--out", str(out)]) == 1
    assert "unknown GPU preset" in capsys.readouterr().err
    assert main(["run", "--prompt", "hi", "--model", str(tmp_path / "nope"), "--out", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "--out", str(out)]) == 1
    assert "--prompt" in capsys.readouterr().err
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    assert main(["run", "--prompt", "hi", "--out", str(blocker / "sub"), "--quiet"]) == 1
    assert "neurosim: error:" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as e:
        main(["run", "--prompt", "hi", "--schemes", "quaternary", "--out", str(out)])
    assert e.value.code == 2


@pytest.mark.slow
def test_inspect_compare_raster(smollm_trace, tmp_path, capsys):
    path = str(smollm_trace.path)
    assert main(["inspect", path]) == 0
    text = capsys.readouterr().out
    assert f"tokens: {smollm_trace.n_tokens}" in text and "model.layers.0.self_attn.q_proj" in text
    assert "prompt 0: 'The unanimous Declaration" in text  # the fixture's prompt, on one line
    assert main(["compare-encoders", path, "--budget", "bitwise-signed=4", "--plot", str(tmp_path / "cmp.png")]) == 0
    text = capsys.readouterr().out
    for scheme in ("binary", "ternary", "bitwise-twos"):
        assert scheme in text
    import encoders

    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    for scheme in encoders.SCHEMES:  # issue 16: all seven schemes, each with its delta variant
        assert scheme in rows and f"{scheme} + delta" in rows
    assert "Lossless T:" in text and "uJ/token" in text  # the column note and the energy column
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    layer = smollm_trace.layers[5]
    assert main(["raster", path, "--layer", layer, "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["raster", path, "--layer", "no.such.layer", "--out", str(tmp_path / "x.png")]) == 1
    assert "not in the trace" in capsys.readouterr().err


@pytest.mark.slow
def test_energy_command(fast_model, smollm_trace, capsys):
    assert main(["energy", str(smollm_trace.path), "--chip", "loihi2", "--gpu", "h100", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "loihi2" in text and "h100" in text and "h100_sxm" not in text
    assert f"{smollm_trace.n_tokens} tokens" in text and "clipped to the window" in text


@pytest.mark.slow
def test_export_command_reads_back(smollm_trace, tmp_path, capsys):
    from neurosim.export import read_aer

    import encoders

    layer = smollm_trace.layers[3]
    out = tmp_path / "l.aer"
    assert main(["export", str(smollm_trace.path), "--format", "aer", "--layer", layer, "--T", "12",
                 "--out", str(out)]) == 0
    back = read_aer(out).counts()
    np = pytest.importorskip("numpy")
    np.testing.assert_array_equal(back, smollm_trace.counts(layer))
    assert main(["export", str(smollm_trace.path), "--format", "aer", "--layer", layer, "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    for fmt in ("csv", "npy", "vcd"):
        assert main(["export", str(smollm_trace.path), "--format", fmt, "--layer", layer, "--tokens", "0:4",
                     "--neurons", "0,1,2", "--T", "12", "--out", str(tmp_path / f"l.{fmt}")]) == 0
    assert encoders is not None


def test_trace_errors(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    for cmd in (["inspect", str(bad)], ["compare-encoders", str(bad)],
                ["raster", str(bad), "--layer", "x", "--out", str(tmp_path / "r.png")],
                ["export", str(bad), "--format", "aer", "--layer", "x", "--out", str(tmp_path / "e.aer")]):
        assert main(cmd) == 1
        err = capsys.readouterr().err
        assert err.startswith("neurosim: error:") and "bad.h5" in err and "Traceback" not in err
    assert main(["inspect", str(tmp_path / "missing.h5")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_k_command(fast_model, capsys, tmp_path):
    assert main(["sweep-k", "--prompt", "The cat sat on the mat and looked at the moon.", "--ks", "2", "3",
                 "--plot", str(tmp_path / "k.png"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "0.730" in text and "0.692" in text  # the report's 7B sparsity at k = 2 and 3, beside ours
    assert (tmp_path / "k.png").stat().st_size > 10_000


@pytest.mark.slow
def test_corpus_command_in_process(fast_model, tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("First prompt about rivers.\nSecond prompt about stars.\n")
    out = tmp_path / "corpus"
    assert main(["run", "--corpus", str(corpus), "--workers", "0", "--prompts-per-shard", "1", "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "shards: 2 (0 reused, 2 computed)" in text
    from analysis.stats import read_stats

    merged = read_stats(out / "stats.h5")  # the merged statistics are in the run folder, not only on screen
    from analysis.tables import fmt_fraction

    s = merged.summary()
    assert s["values"] > 0 and f"sparsity ({s['window_scheme']}, {s['window_steps']} steps): " \
        f"{fmt_fraction(s['sparsity'])}" in text
    report = (out / "report.md").read_text()
    assert "2 prompts in 2 shards" in report and "## Headline numbers" in report and "## Encoders" in report
    assert main(["run", "--corpus", str(corpus), "--workers", "0", "--prompts-per-shard", "1", "--out", str(out),
                 "--resume", "--quiet"]) == 0
    assert "shards: 2 (2 reused, 0 computed)" in capsys.readouterr().out
