"""analysis.tables (one formatter, one headline table) and analysis.roles (one role detector)."""
from __future__ import annotations

import pytest

from analysis.roles import ALL_ROLES, role_of
from analysis.tables import fmt, fmt_fraction, headline_rows, markdown_table
from neurosim.capture import role_of as capture_role_of
from analysis.stats import infer_role


@pytest.mark.parametrize(("name", "role"), [
    ("transformer.h.0.mlp.c_fc", "up"), ("transformer.h.0.mlp.c_proj", "down"),
    ("transformer.h.0.attn.c_proj", "o"), ("transformer.h.0.attn.c_attn", "qkv"),
    ("model.layers.0.mlp.gate_proj", "gate"), ("gpt_neox.layers.0.attention.dense", "o"),
    ("model.layers.0.mlp.router", "other"), ("lm_head", "lm_head"),
])
def test_one_role_detector(name, role):
    assert role_of(name) == capture_role_of(name) == infer_role(name) == role
    assert role in ALL_ROLES


def test_formatting_and_headline():
    assert fmt(0.691512) == "0.6915" and fmt(1.5e-5) == "1.500e-05" and fmt(None) == "" and fmt(3) == "3"
    assert fmt_fraction(0.6915) == "69.15%" and fmt_fraction(float("nan")) == "n/a"
    summary = {"sparsity": 0.7, "silence": 0.2, "spikes_per_active_channel": 1.2, "frac_abs_le_7": 0.95,
               "frac_abs_gt_16": 0.001}
    rows = headline_rows(summary, ("bitwise-signed", 3))
    assert rows[0] == {"statistic": "sparsity (bitwise-signed, 3 steps)", "this model": "70%",
                       "SpikingBrain-7B report": "69.15%"}
    other = headline_rows(summary, ("ternary", 7))
    assert other[0]["statistic"] == "sparsity (ternary, 7 steps)"  # never a hard-coded window
    assert other[0]["SpikingBrain-7B report"] == "n/a"  # the report's sparsity is for its own window
    md = markdown_table([{"a": 0.5, "sparsity": 0.25, "b": "x|y"}])
    assert md.splitlines() == ["| a | sparsity | b |", "|---|---|---|", "| 0.5 | 25% | x\\|y |"]
