"""Spike traces (HDF5), streaming statistics, encoder comparison and plots."""

# The HDF5 spike trace (schema: docs/trace.md).
from .trace import SCHEMA_VERSION, LayerInfo, SpikeTrace, TraceError, TraceWriter, edit_trace  # noqa: E402

# Statistics, encoder comparison and k sweep (figures: ``analysis.plots``; one call: ``analysis.report``).
from .compare import compare_encoders, comparison_markdown  # noqa: E402
from .stats import SpikeStats, read_stats, write_stats  # noqa: E402
from .sweep import counts_from_activations, k_sweep, sweep_markdown  # noqa: E402
