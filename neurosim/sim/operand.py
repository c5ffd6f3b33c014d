"""A layer's weights prepared for exact integer replay: INT8 values, group scales, lookup tables.

The replay adds integer weight columns into integer accumulators. The kernels run on
float tensors (torch's gather/scatter and matrix kernels are float), which is exact here:
every partial sum is an integer of magnitude at most ``group_size * max|q|``, and float32
represents every integer below 2**24 exactly (float64: below 2**53), so no addition rounds.
:func:`prepare_weight` picks float32 when that bound holds and float64 otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neurosim.weights import Int8Weight, quantize_int8

FLOAT32_EXACT = 2**24  # float32 significand: 24 bits, every integer below this is exact
FLOAT64_EXACT = 2**53  # float64 significand: 53 bits
TABLE_BYTES_CPU = 256 << 10  # bytes of one lookup-table slice on CPU: about one core's L2 cache


@dataclass
class Operand:
    """Integer weights of one linear layer ``y = W x`` ready for replay on ``device``.

    Attributes:
        q: integer weights [out, in] (int8 for INT8 layers) on ``device``.
        scale: float32 [out, n_groups] scale of each input group, or None (unit scale).
        group_size: input channels per scale group (``in_features`` when unscaled).
        n_groups: number of groups; accumulators are kept per group.
        max_abs: largest ``|q|``.
        bytes_per_weight: storage of one weight (1 for INT8).
        kernel_dtype: float32 or float64: the exact float type the kernels use.
        tables: lookup tables, one per output column slice: rows are input channels (weight
            columns). ``table_kind`` "int8" (CPU): FBGEMM 8-bit row format, the byte
            ``q + 128`` per weight followed by a float32 row scale 1.0 and offset -128.0, so
            the kernel reads one byte per weight and recovers ``q`` exactly; "float": ``q.T``
            slices in ``kernel_dtype``.
        bounds: ``(start, stop)`` output columns of each table.
        table_kind: "int8" or "float".
    """

    q: torch.Tensor
    scale: torch.Tensor | None
    group_size: int
    n_groups: int
    max_abs: int
    bytes_per_weight: int
    kernel_dtype: torch.dtype
    tables: list[torch.Tensor]
    bounds: list[tuple[int, int]]
    table_kind: str = "float"

    @property
    def out_features(self) -> int:
        return int(self.q.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.q.shape[1])

    @property
    def device(self) -> torch.device:
        return self.q.device

    def grouped_table(self) -> torch.Tensor:
        """``q.T`` split by input group, zero-padded: [n_groups, group_size, out] (kernel dtype)."""
        pad = self.n_groups * self.group_size - self.in_features
        qt = torch.nn.functional.pad(self.q.T.to(self.kernel_dtype), (0, 0, 0, pad))
        return qt.reshape(self.n_groups, self.group_size, self.out_features)


def as_int_weight(weight: object) -> tuple[Int8Weight | torch.Tensor, bool]:
    """Normalize a weight argument: returns ``(Int8Weight or integer tensor, quantized_here)``.

    Float tensors (and ``nn.Linear`` modules) are quantized to symmetric INT8 with per-group
    scales (:func:`neurosim.weights.quantize_int8`), the W8ASpike layout; integer tensors are
    used as they are, with unit scale. Raises TypeError for anything else.
    """
    if isinstance(weight, torch.nn.Linear):
        weight = weight.weight
    if isinstance(weight, Int8Weight):
        return weight, False
    if isinstance(weight, torch.Tensor):
        w = weight.detach()
        if w.dim() != 2:
            raise ValueError(f"weight must be 2-D [out_features, in_features], got shape {tuple(w.shape)}")
        if w.is_floating_point():
            return quantize_int8(w), True
        if w.dtype == torch.bool or w.is_complex():
            raise TypeError(f"weight must be a float or integer tensor, got {w.dtype}")
        return w, False
    raise TypeError(
        f"weight must be a torch.Tensor, an Int8Weight or an nn.Linear, got {type(weight).__name__}"
    )


def weight_shape(weight: object) -> tuple[int, int]:
    """``(out_features, in_features)`` of any accepted weight argument, without converting it."""
    if isinstance(weight, torch.nn.Linear):
        weight = weight.weight
    if isinstance(weight, Int8Weight):
        return int(weight.q.shape[0]), int(weight.q.shape[1])
    if isinstance(weight, torch.Tensor) and weight.dim() == 2:
        return int(weight.shape[0]), int(weight.shape[1])
    if isinstance(weight, torch.Tensor):
        raise ValueError(f"weight must be 2-D [out_features, in_features], got shape {tuple(weight.shape)}")
    raise TypeError(f"weight must be a torch.Tensor, an Int8Weight or an nn.Linear, got {type(weight).__name__}")


def prepare_weight(
    weight: object,
    device: str | torch.device = "cpu",
    out_chunk: int | None = None,
    need_tables: bool = True,
) -> Operand:
    """Move a layer's integer weights to ``device`` and build the replay lookup tables.

    Args:
        weight: float tensor [out, in] (quantized to INT8 here), :class:`Int8Weight`,
            integer tensor (unit scale) or ``nn.Linear``.
        device: where the replay runs.
        out_chunk: output columns per lookup table; None = slices of about 256 KiB on CPU
            (cache-sized), all columns on CUDA.
        need_tables: build the per-event lookup tables (the ``events`` engine needs them).

    Raises:
        TypeError: unsupported weight type or an Int8Weight whose ``q`` is not int8.
        ValueError: malformed scales, or weights too large to accumulate exactly.
    """
    w, _ = as_int_weight(weight)
    device = torch.device(device)
    if isinstance(w, Int8Weight):
        if not isinstance(w.q, torch.Tensor) or w.q.dtype != torch.int8 or w.q.dim() != 2:
            raise TypeError("Int8Weight.q must be a 2-D int8 tensor [out_features, in_features]")
        out_f, in_f = (int(d) for d in w.q.shape)
        gs = int(w.group_size)
        if gs <= 0:
            raise ValueError(f"Int8Weight.group_size must be positive, got {gs}")
        n_groups = -(-in_f // gs)
        if tuple(w.scale.shape) != (out_f, n_groups):
            raise ValueError(
                f"Int8Weight.scale has shape {tuple(w.scale.shape)}, expected [{out_f}, {n_groups}] "
                f"for {in_f} inputs in groups of {gs}"
            )
        if not bool(torch.isfinite(w.scale).all()):
            raise ValueError("Int8Weight.scale contains NaN or inf")
        q = w.q.to(device)
        scale = w.scale.to(device=device, dtype=torch.float32)
        bpw = 1
    else:
        q = w.to(device)
        out_f, in_f = (int(d) for d in q.shape)
        gs, n_groups, scale, bpw = in_f, 1, None, q.element_size()
    if out_f == 0 or in_f == 0:
        raise ValueError(f"weight has an empty dimension: shape [{out_f}, {in_f}]")
    max_abs = int(q.abs().max()) if q.dtype != torch.int8 else int(q.to(torch.int16).abs().max())
    bound = gs * max_abs
    if bound < FLOAT32_EXACT:
        kdt = torch.float32
    elif bound < FLOAT64_EXACT:
        kdt = torch.float64
    else:
        raise ValueError(
            f"weights too large to accumulate exactly: group size {gs} x max|q| {max_abs} >= 2**53"
        )
    kind = "int8" if device.type == "cpu" and max_abs <= 127 and kdt == torch.float32 and _has_byte_kernel() else "float"
    if out_chunk is None:
        per_col = in_f * (1 if kind == "int8" else torch.finfo(kdt).bits // 8)
        out_chunk = out_f if device.type != "cpu" else max(64, (TABLE_BYTES_CPU // per_col) // 64 * 64)
    if isinstance(out_chunk, bool) or not isinstance(out_chunk, int) or out_chunk <= 0:
        raise ValueError(f"out_chunk must be a positive integer, got {out_chunk!r}")
    bounds = [(a, min(a + out_chunk, out_f)) for a in range(0, out_f, out_chunk)]
    tables: list[torch.Tensor] = []
    if need_tables:
        if kind == "int8":
            tables = [_byte_rows(q[a:b].T) for a, b in bounds]
        else:
            qt = q.T.to(kdt)
            tables = [qt[:, a:b].contiguous() for a, b in bounds]
    return Operand(q, scale, gs, n_groups, max_abs, bpw, kdt, tables, bounds, kind)


_ROW_TAIL = torch.tensor([1.0, -128.0], dtype=torch.float32).view(torch.uint8)  # row scale, row offset


def _byte_rows(qt: torch.Tensor) -> torch.Tensor:
    """[rows, cols] integers in [-127, 127] -> FBGEMM 8-bit rows: uint8 ``q + 128``, then
    float32 scale 1.0 and offset -128.0 (the layout ``embedding_bag_byte_rowwise_offsets`` reads)."""
    u = (qt.to(torch.int16) + 128).to(torch.uint8)
    return torch.cat([u, _ROW_TAIL.to(qt.device).expand(qt.shape[0], 8)], dim=1).contiguous()


def _has_byte_kernel() -> bool:
    return hasattr(torch.ops, "quantized") and hasattr(torch.ops.quantized, "embedding_bag_byte_rowwise_offsets")
