"""k sweep: Table 11 columns from float activations, against direct quantization."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import encoders as E
from analysis.sweep import REPORT_TABLE11, counts_from_activations, k_sweep, sweep_markdown


def _acts():
    rng = np.random.default_rng(0)
    return {
        "model.layers.0.mlp.up_proj": rng.normal(size=(200, 256)).astype(np.float32),
        "model.layers.0.mlp.down_proj": rng.laplace(size=(200, 512)).astype(np.float32),
    }


def test_sweep_matches_direct_quantization_and_reference_table():
    acts = _acts()
    rows = k_sweep(counts_from_activations(acts), progress=False)
    assert [r["k"] for r in rows] == [2.0, 2.5, 3.0, 3.5, 4.0]
    for r in rows:
        counts = [E.spike_counts(x, k=r["k"]).counts for x in acts.values()]
        allc = np.concatenate([c.ravel() for c in counts])
        assert r["frac_abs_le_7"] == pytest.approx(np.mean(np.abs(allc) <= 7), abs=1e-12)
        assert r["silence"] == pytest.approx(np.mean(allc == 0), abs=1e-12)
        spikes = E.encode(np.minimum(np.abs(allc), 7), "bitwise-signed", T=3)
        assert r["sparsity"] == pytest.approx(1 - np.count_nonzero(spikes) / (3 * allc.size), abs=1e-12)
        assert (r["report_sparsity"], r["report_frac_abs_le_7"]) == REPORT_TABLE11[r["k"]]
        assert math.isnan(r["perplexity"])
    # larger k: lower threshold, larger counts, denser trains, fewer counts fit 3 bits
    assert all(a["sparsity"] > b["sparsity"] for a, b in zip(rows, rows[1:]))
    assert all(a["frac_abs_le_7"] > b["frac_abs_le_7"] for a, b in zip(rows, rows[1:]))


def test_perplexity_column_and_markdown():
    rows = k_sweep(counts_from_activations(list(_acts().items())), ks=[3, 5], perplexity=lambda k: 10.0 + k,
                   float_perplexity=9.5, progress=False)
    assert [r["perplexity"] for r in rows] == [13.0, 15.0]
    assert rows[0]["float_perplexity"] == 9.5
    assert math.isnan(rows[1]["report_sparsity"])  # the report has no k = 5
    md = sweep_markdown(rows, "toy")
    assert "perplexity (spiking); float model 9.50" in md and "| 5 |" in md and "n/a" in md and "0.692" in md


def test_torch_activations_work():
    x = torch.randn(50, 64, generator=torch.Generator().manual_seed(1))
    rows = k_sweep(counts_from_activations({"a": x}), ks=[3], progress=False)
    c = E.spike_counts(x.numpy(), k=3).counts
    assert rows[0]["frac_abs_le_7"] == pytest.approx(np.mean(np.abs(c) <= 7))


def test_bad_arguments():
    f = counts_from_activations(_acts())
    with pytest.raises(ValueError, match="positive"):
        k_sweep(f, ks=[0], progress=False)
    with pytest.raises(TypeError, match="number"):
        k_sweep(f, ks=["3"], progress=False)
    with pytest.raises(ValueError, match="at least one"):
        k_sweep(f, ks=[], progress=False)
    with pytest.raises(TypeError, match="callable"):
        k_sweep(_acts(), progress=False)
    with pytest.raises(ValueError, match="no layers"):
        k_sweep(lambda k: iter(()), ks=[3], progress=False)
    with pytest.raises(ValueError, match="no activations"):
        counts_from_activations({})
    with pytest.raises(TypeError, match="pairs"):
        counts_from_activations([np.zeros((2, 2))])
