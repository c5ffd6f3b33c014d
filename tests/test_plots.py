"""Plots: each figure renders to a PNG of the expected size and SVG, with the right labels and data."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import encoders as E
from analysis import plots as P
from analysis.compare import compare_encoders
from analysis.stats import SpikeStats
from analysis.sweep import REPORT_TABLE11, counts_from_activations, k_sweep
from analysis.trace import LayerInfo, SpikeTrace

ROLES = {"q_proj": ("self_attn", "q"), "o_proj": ("self_attn", "o"), "up_proj": ("mlp", "up"),
         "down_proj": ("mlp", "down")}


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _check_saved(fig, tmp_path, name, formats=("png",)):
    paths = P.save_figure(fig, tmp_path / name, formats)
    png = paths[0]
    assert png.suffix == ".png"
    if "svg" in formats:
        assert paths[1].suffix == ".svg" and paths[1].read_text()[:500].count("<svg") == 1
    w, h = fig.get_size_inches() * P.DPI
    assert _png_size(png) == (round(w), round(h))
    assert png.stat().st_size > 5000  # a drawn figure, not a blank canvas
    assert not list(tmp_path.glob(".*.tmp"))
    return png


@pytest.fixture(scope="module")
def trace():
    rng = np.random.default_rng(0)
    layers, i = [], 0
    for block in range(3):
        for proj, (parent, role) in ROLES.items():
            C = 96 if proj != "down_proj" else 192
            x = rng.laplace(size=(24, C)).astype(np.float32) * (1 + block)
            c, v = E.spike_counts(x, k=3)
            info = LayerInfo(f"model.layers.{block}.{parent}.{proj}", role, C, 64, i)
            layers.append((info, c.astype(np.int16), v))
            i += 1
    return SpikeTrace.from_arrays(model_id="synthetic", k=3.0, tokens=np.arange(24), layers=layers)


@pytest.fixture(scope="module")
def stats(trace):
    return SpikeStats.from_trace(trace, progress=False)


def _texts(fig):
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
    return " | ".join(out)


def test_raster_shows_the_encoded_trains_with_polarity(tmp_path):
    counts = np.array([[5, -3, 0], [-9, 1, 2]], dtype=np.int16)
    fig = P.plot_raster(counts, "bitwise-signed", 3, layer="L", tokens=2, neurons=3, select="first")
    ax = fig.axes[0]
    img = np.asarray(ax.images[0].get_array())
    # rows = channels, columns = token*T + step, MSB first; -9 is clipped to -7
    np.testing.assert_array_equal(img, [[1, 0, 1, -1, -1, -1], [0, -1, -1, 0, 0, 1], [0, 0, 0, 0, 1, 0]])
    assert "bitwise-signed" in ax.get_title() and "1 counts clipped" in ax.get_title()
    assert ax.get_xlabel().startswith("time: token index") and "input channel" in ax.get_ylabel()
    _check_saved(fig, tmp_path, "raster", ("png", "svg"))
    # sign-split binary: spikes of negative counts drawn in the negative colour
    fig = P.plot_raster(counts, "binary", 3, tokens=1, neurons=3, select="first")
    img = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_array_equal(img, [[1, 1, 1], [-1, -1, -1], [0, 0, 0]])


def test_token_raster(tmp_path, trace):
    c = trace.counts("model.layers.1.mlp.up_proj")
    fig = P.plot_token_raster(c, token=5, scheme="bitwise-twos", T=4, layer="up", neurons=12, token_label="the")
    ax = fig.axes[0]
    assert "token 5 'the'" in ax.get_title()
    assert ax.get_xlabel() == "step (weight of the step)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\n(x-8)", "1\n(x4)", "2\n(x2)", "3\n(x1)"]
    assert len(ax.texts) == 12 and all(t.get_text().startswith("s = ") for t in ax.texts)
    _check_saved(fig, tmp_path, "token")
    with pytest.raises(ValueError, match="outside"):
        P.plot_token_raster(c, token=99)


def test_count_histogram_annotates_fractions(tmp_path, stats):
    fig = P.plot_count_histogram(stats)
    ax = fig.axes[0]
    s = stats.summary()
    text = _texts(fig)
    assert f"{s['frac_abs_le_7']:.1%}" in text and f"{s['frac_abs_gt_16']:.2%}" in text and "94.1%" in text
    assert ax.get_yscale() == "log" and "fraction" in ax.get_ylabel() and "|s|" in ax.get_xlabel()
    heights = [p.get_height() for bars in ax.containers for p in bars if np.isfinite(p.get_height())]
    assert sum(heights) == pytest.approx(1.0)  # per-value bars plus the tail bar cover every value
    _check_saved(fig, tmp_path, "hist")


def test_layer_bars_one_bar_per_layer(tmp_path, stats):
    fig = P.plot_layer_bars(stats)
    top, bottom = fig.axes[:2]
    bars = [p.get_height() for p in top.patches]
    assert len(bars) == len(stats.layers)
    expect = [ls.state.sparsity("bitwise-signed", 3) for ls in stats.ordered_layers()]
    np.testing.assert_allclose(bars, expect)
    assert "sparsity" in top.get_ylabel() and "silence" in bottom.get_ylabel()
    assert bottom.get_xlabel().startswith("transformer block")
    _check_saved(fig, tmp_path, "bars")


def test_vth_steps_comparison_sweep_energy(tmp_path, stats):
    fig = P.plot_vth(stats)
    assert "V_th" in fig.axes[0].get_xlabel() and fig.axes[1].get_yscale() == "log"
    _check_saved(fig, tmp_path, "vth")

    fig = P.plot_steps_coverage(stats)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "steps T per token"
    bs = next(l for l in ax.lines if l.get_label() == "bitwise-signed")
    assert bs.get_ydata()[3] == pytest.approx(stats.summary()["frac_abs_le_7"])  # 3 steps carry |s| <= 7
    _check_saved(fig, tmp_path, "steps")

    rows = compare_encoders(stats)
    fig = P.plot_encoder_comparison(rows)
    assert [ax.get_title() for ax in fig.axes] == ["Spikes per token", "Sparsity",
                                                    "Clipped values at the step budget (range carried below name)",
                                                    "Firing rate per step at the budget"]
    lossless = [p.get_height() for p in fig.axes[0].patches][: len(rows)]
    np.testing.assert_allclose(lossless, [r["events_per_token"] for r in rows])
    _check_saved(fig, tmp_path, "compare")
    with pytest.raises(ValueError, match="model-level"):
        P.plot_encoder_comparison(compare_encoders(stats, per_layer=True))

    rng = np.random.default_rng(1)
    sweep = k_sweep(counts_from_activations({"a": rng.normal(size=(50, 64))}), progress=False)
    fig = P.plot_k_sweep(sweep, "toy")
    ref = next(l for l in fig.axes[0].lines if "report" in l.get_label())
    np.testing.assert_allclose(ref.get_ydata(), [REPORT_TABLE11[k][0] for k in sorted(REPORT_TABLE11)])
    assert fig.axes[0].get_xlabel().startswith("k") and len(fig.axes) == 2
    _check_saved(fig, tmp_path, "sweep")
    for r in sweep:
        r["perplexity"], r["float_perplexity"] = 20 + r["k"], 19.0
    fig = P.plot_k_sweep(sweep)
    assert len(fig.axes) == 3 and "perplexity" in fig.axes[2].get_ylabel()
    assert any(line.get_ydata()[0] == 19.0 for line in fig.axes[2].lines)  # the float model's line

    energy = [{"platform": "chip A", "compute": 2e-6, "memory": 5e-6, "routing": 1e-6, "static": 3e-6},
              {"platform": "GPU B", "compute": 4e-4, "memory": 9e-4, "static": 2e-4}]
    fig = P.plot_energy_breakdown(energy)
    ax, share = fig.axes[:2]
    assert ax.get_ylabel() == "energy per token (mJ)"
    tops = {}
    for p in ax.patches:  # stacked: the highest bar top per x equals the platform total
        x = round(p.get_x() + p.get_width() / 2)
        tops[x] = max(tops.get(x, 0.0), p.get_y() + p.get_height())
    assert tops[0] == pytest.approx(11e-6 * 1e3) and tops[1] == pytest.approx(1.5e-3 * 1e3)
    assert "share" in share.get_ylabel()
    _check_saved(fig, tmp_path, "energy")
    with pytest.raises(ValueError, match="non-negative"):
        P.plot_energy_breakdown([{"platform": "x", "compute": -1.0}])
    with pytest.raises(ValueError, match="platform"):
        P.plot_energy_breakdown([{"compute": 1.0}])


def test_write_all_plots(tmp_path, trace, stats):
    out = P.write_all_plots(stats, tmp_path / "plots", trace=trace, formats=("png",))
    assert set(out) == {"count_histogram", "layer_sparsity_silence", "steps_coverage", "encoder_comparison",
                        "vth_distribution", "raster", "raster_token"}
    for paths in out.values():
        assert len(paths) == 1 and paths[0].stat().st_size > 5000
    with pytest.raises(ValueError, match="unsupported"):
        P.save_figure(P.plot_vth(stats), tmp_path / "x", formats=("bmp",))


@pytest.mark.slow
def test_analyze_real_trace_writes_stats_plots_and_summary(smollm_trace, tmp_path):
    import shutil

    from analysis.report import analyze_trace
    from analysis.stats import read_stats

    copy = tmp_path / "trace.h5"
    shutil.copyfile(smollm_trace.path, copy)
    res = analyze_trace(copy, tmp_path / "out", formats=("png",), progress=False)
    assert res["stats_path"] == copy and read_stats(copy) == res["stats"]
    assert len(res["stats"].layers) == len(smollm_trace.layers)
    assert {"raster", "raster_token", "count_histogram", "layer_sparsity_silence", "encoder_comparison",
            "vth_distribution", "steps_coverage"} <= set(res["plots"])
    for paths in res["plots"].values():
        assert _png_size(paths[0])[0] > 500
    md = res["markdown_path"].read_text()
    s = res["summary"]
    assert f"{s['sparsity']:.2%}" in md and "69.15%" in md and "18.4%" in md and "| lm_head" not in md
    with pytest.raises(FileExistsError):  # the summary is not overwritten unless asked
        analyze_trace(copy, tmp_path / "out", formats=("png",), progress=False)
    # an in-memory trace gets a separate stats file
    mem = SpikeTrace.from_arrays(model_id="m", k=3.0, tokens=np.arange(smollm_trace.n_tokens),
                                 layers=list(smollm_trace.iter_layers())[:3])
    res = analyze_trace(mem, tmp_path / "mem", formats=("png",), progress=False)
    assert res["stats_path"] == (tmp_path / "mem" / "stats.h5").absolute()


def test_token_texts_from_offsets_across_prompts():
    info = LayerInfo("l", "up", 2, 2, 0)
    c = np.zeros((5, 2), np.int16)
    tr = SpikeTrace.from_arrays(model_id="m", k=3.0, tokens=np.arange(5), layers=[(info, c, np.ones(5, np.float32))],
                                offsets=np.array([[0, 5], [5, 11], [0, 2], [2, 3], [-1, -1]]),
                                prompt_starts=[0, 2], prompt_text=["Hello world", "Hi!"])
    assert P.token_texts(tr, [0, 1, 2, 3, 4]) == {0: "Hello", 1: " world", 2: "Hi", 3: "!", 4: "?"}
    fig = P.plot_raster(c, tokens=5, token_labels=P.token_texts(tr, range(5)))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:2] == ["0\nHello", "1\nworld"]
    no_text = SpikeTrace.from_arrays(model_id="m", k=3.0, tokens=np.arange(5), layers=[(info, c, np.ones(5, np.float32))])
    assert P.token_texts(no_text, [0]) is None
