"""The k sweep (report Table 11): sparsity and |s| <= 7 fraction as the threshold divisor k varies.

``V_th = mean|x| / k``: a larger k lowers the threshold, so counts grow, fewer fit 3 bits
and the spike trains get denser. The report measured, for SpikingBrain-7B with
bitwise-ternary coding and a 3-step window (SpikingBrain report, arXiv:2509.05276, Table 11):

====  ========  ==============
k     sparsity  frac |s| <= 7
====  ========  ==============
2     0.730     0.989
2.5   0.709     0.976
3     0.692     0.951
3.5   0.677     0.916
4     0.664     0.877
====  ========  ==============

Counts at another k cannot be recovered exactly from stored counts (rounding already
happened; rescaling them by k/k0 shifts sparsity by several points, more than the
whole Table 11 range), so the sweep takes a callable that produces the counts for each k:
from float activations (:func:`counts_from_activations`) or from a recapture of the model.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import encoders

from .stats import REPORT_WINDOW, SpikeStats
from .trace import _check_k

DEFAULT_KS: tuple[float, ...] = (2.0, 2.5, 3.0, 3.5, 4.0)  # report Table 11
# Report Table 11, SpikingBrain-7B: k -> (sparsity with a 3-step bitwise-ternary window, frac |s| <= 7)
REPORT_TABLE11: dict[float, tuple[float, float]] = {
    2.0: (0.730, 0.989),
    2.5: (0.709, 0.976),
    3.0: (0.692, 0.951),
    3.5: (0.677, 0.916),
    4.0: (0.664, 0.877),
}
# Report Table 11: average task accuracy of SpikingBrain-7B at the ends of the sweep; BF16 model 0.6998.
REPORT_ACCURACY: dict[float, float] = {2.0: 0.6735, 4.0: 0.6940}

CountsForK = Callable[[float], Iterable[tuple[Any, Any, Any]]]


def k_sweep(
    counts_for_k: CountsForK,
    ks: Sequence[float] = DEFAULT_KS,
    window: tuple[str, int] = REPORT_WINDOW,
    perplexity: Callable[[float], float] | None = None,
    float_perplexity: float | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Table 11 for the model at hand: one row per k.

    Args:
        counts_for_k: ``counts_for_k(k)`` yields ``(layer, counts, vth)`` for every layer
            (layer: a name or ``LayerInfo``; counts ``[tokens, channels]``).
        ks: the k values (positive).
        window: (scheme, T) of the sparsity column (report: bitwise-signed, 3 steps).
        perplexity: optional ``perplexity(k)`` (e.g. the capture's spiking forward).
        float_perplexity: the float model's perplexity on the same text, for reference.
        progress: show a progress bar over k.

    Returns:
        rows with ``k``, ``sparsity``, ``frac_abs_le_7``, ``frac_abs_gt_16``, ``silence``,
        ``spikes_per_active_channel``, ``clipped_fraction`` (fractions in [0, 1]),
        ``perplexity`` (NaN without a callable), ``float_perplexity`` (NaN if not given), and the report's ``report_sparsity`` /
        ``report_frac_abs_le_7`` at the same k (NaN where the report has none).
    """
    if not callable(counts_for_k):
        raise TypeError("counts_for_k must be a callable k -> iterable of (layer, counts, vth)")
    ks = [_check_k(k) for k in ks]
    if not ks:
        raise ValueError("give at least one k")
    rows = []
    iterator: Iterable[float] = ks
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(ks, desc="k sweep", unit="k", leave=False, disable=None)  # None: terminal only
    for k in iterator:
        st = SpikeStats(window)
        st.update_trace(counts_for_k(k), progress=False)
        if not st.layers:
            raise ValueError(f"counts_for_k({k}) yielded no layers")
        s = st.summary()
        ref = REPORT_TABLE11.get(k, (math.nan, math.nan))
        rows.append({
            "k": k,
            "sparsity": s["sparsity"],
            "frac_abs_le_7": s["frac_abs_le_7"],
            "frac_abs_gt_16": s["frac_abs_gt_16"],
            "silence": s["silence"],
            "spikes_per_active_channel": s["spikes_per_active_channel"],
            "clipped_fraction": s["clipped_fraction"],
            "perplexity": float(perplexity(k)) if perplexity is not None else math.nan,
            "float_perplexity": math.nan if float_perplexity is None else float(float_perplexity),
            "report_sparsity": ref[0],
            "report_frac_abs_le_7": ref[1],
        })
    return rows


def counts_from_activations(activations: Mapping[str, Any] | Sequence[tuple[Any, Any]]) -> CountsForK:
    """``counts_for_k`` from float activations (the inputs of each linear layer).

    Args:
        activations: ``{layer: x}`` or a sequence of ``(layer, x)``; ``x`` is ``[tokens,
            features]`` (numpy or torch, any device) and is quantized with
            :func:`encoders.spike_counts` at each k (V_th over the feature axis).
    """
    items = list(activations.items()) if isinstance(activations, Mapping) else list(activations)
    if not items:
        raise ValueError("no activations given")
    for entry in items:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise TypeError("activations must be a mapping or a sequence of (layer, x) pairs")

    def counts_for_k(k: float) -> Iterator[tuple[Any, Any, Any]]:
        for layer, x in items:
            counts, vth = encoders.spike_counts(x, k=k, dim=-1)
            yield layer, counts, vth

    return counts_for_k


def sweep_markdown(rows: list[dict[str, Any]], model: str = "this model") -> str:
    """Markdown table of :func:`k_sweep` rows beside the report's SpikingBrain-7B figures."""
    has_ppl = any(not math.isnan(r["perplexity"]) for r in rows)
    head = ["k", f"sparsity ({model})", "sparsity (7B report)", f"frac abs(s)<=7 ({model})",
            "frac abs(s)<=7 (7B report)", "silence", "spikes/active"]
    if has_ppl:
        ref = rows[0].get("float_perplexity", math.nan)
        head.append("perplexity (spiking)" + ("" if math.isnan(ref) else f"; float model {ref:.2f}"))
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(x: float, fmt: str) -> str:
        return "n/a" if math.isnan(x) else fmt.format(x)

    for r in rows:
        cells = [f"{r['k']:g}", f(r["sparsity"], "{:.3f}"), f(r["report_sparsity"], "{:.3f}"),
                 f(r["frac_abs_le_7"], "{:.3f}"), f(r["report_frac_abs_le_7"], "{:.3f}"),
                 f(r["silence"], "{:.3f}"), f(r["spikes_per_active_channel"], "{:.3f}")]
        if has_ppl:
            cells.append(f(r["perplexity"], "{:.2f}"))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
