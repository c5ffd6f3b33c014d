"""The fused int16 quantize kernel equals torch's divide + round-half-even bit for bit."""
from __future__ import annotations

import pytest
import torch

import encoders
from neurosim import counts_fused
from neurosim.capture import counts_int16

pytestmark = pytest.mark.skipif(not counts_fused.available(), reason="numba not installed")


def _inputs(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rows, cols = 64, 1024  # 65,536 values: above the kernel's size cut-off
    normal = torch.randn(rows, cols, generator=g)
    heavy = torch.randn(rows, cols, generator=g) ** 3 * 50  # outliers: counts in the hundreds
    ties = torch.randint(-40, 40, (rows, cols), generator=g).float() * 0.5  # many x / V_th at .5
    ties[:, 0] = 0.0
    zeros = torch.zeros(rows, cols)
    zeros[1::2] = torch.randn(rows // 2, cols, generator=g) * 1e-7  # V_th at its lower clamp
    return [normal, heavy, ties, zeros]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_counts_equal_reference(seed):
    for x in _inputs(seed):
        for k in (1.0, 2.0, 3.0, 3.7):
            ref = encoders.spike_counts(x, k)
            # x.shape[-1] * k < 32767 here, so the torch path would skip its range check: the
            # kernel's own check must not change any value either
            work, out = torch.empty(x.shape), torch.empty(x.shape, dtype=torch.int16)
            counts, vth = counts_int16(x, k, work=work, out=out)
            assert counts is out  # the fused path wrote the caller's buffer
            assert torch.equal(counts.to(torch.int32), ref.counts) and torch.equal(vth, ref.vth)
            s_ref = torch.round(x / (x.abs().mean(-1, keepdim=True) / k).clamp(encoders.VTH_MIN, encoders.VTH_MAX))
            assert torch.equal(counts.float(), s_ref)


def test_kernel_flags_int16_overflow_and_capture_raises():
    x = torch.zeros(4, 40000)
    x[2, 0] = 1e9  # k * C >= 32767: count 120000 cannot be int16
    vth = (x.abs().mean(-1) / 3.0).clamp(encoders.VTH_MIN, encoders.VTH_MAX)
    out = torch.empty(x.shape, dtype=torch.int16)
    assert counts_fused.quantize_int16(x, vth, out) is False
    assert counts_fused.quantize_int16(torch.ones(4, 40000), torch.ones(4), out) is True
    with pytest.raises(ValueError, match="does not fit int16"):
        counts_int16(x, 3.0, work=torch.empty(x.shape), out=out)


def test_non_contiguous_and_small_inputs_use_the_reference_path():
    x = torch.randn(512, 256).t()  # non-contiguous view
    work, out = torch.empty(x.shape), torch.empty(x.shape, dtype=torch.int16)
    counts, vth = counts_int16(x, 3.0, work=work, out=out)
    ref_counts, ref_vth = counts_int16(x, 3.0)  # no buffers: the torch path
    # (the mean of a strided view may differ in the last bit: a different reduction order)
    assert torch.equal(counts, ref_counts) and torch.allclose(vth, ref_vth, rtol=1e-6, atol=0)
    small = torch.randn(3, 7)
    c2, _ = counts_int16(small, 3.0, work=torch.empty(3, 7), out=torch.empty(3, 7, dtype=torch.int16))
    assert torch.equal(c2.to(torch.int32), encoders.spike_counts(small, 3.0).counts)
    assert c2.dtype == torch.int16
