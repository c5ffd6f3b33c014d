"""Energy per arithmetic operation and per memory access, by process node (pJ).

Two published tables and a documented interpolation between them:

* :data:`HOROWITZ_45NM`: M. Horowitz, "Computing's energy problem (and what we can do about
  it)", ISSCC 2014, 45 nm, 0.9 V. The SpikingBrain report's figures (FP16 MAC 1.5 pJ, INT8 MAC
  0.23 pJ, INT8 ADD 0.03 pJ; arXiv:2509.05276) are sums of rows of
  this table: FP16 MAC = FP16 mult 1.1 + FP16 add 0.4; INT8 MAC = INT8 mult 0.2 + INT8 add 0.03.
* :data:`JOUPPI_7NM`: N. P. Jouppi et al., "Ten Lessons From Three Generations Shaped Google's
  TPUv4i", ISCA 2021, Table 2 (Horowitz's table updated to 7 nm; also reproduced in
  Hennessy & Patterson's Table 1.3). FP16 rows at 7 nm as quoted in H. Wang et al., "BitNet:
  Scaling 1-bit Transformers for Large Language Models", 2023, Table 2 (same sources).
  The 32 KB SRAM row is NOT published at 7 nm: it is our log-log interpolation between the
  8 KB and 1 MB rows (marked ``interpolated`` in :attr:`OpEnergyTable.estimated`).
* :func:`table_for_node`: nodes between 7 and 45 nm (Loihi 14 nm, SpiNNaker 2 22 nm, TrueNorth
  28 nm) get a geometric interpolation in log(node) between the two tables. These are SCALED
  ESTIMATES, not published figures; every field of such a table is listed in ``estimated``.

Memory rows are per 64-bit access (Horowitz; Jouppi). DRAM does not scale with the logic node
(Jouppi et al. keep DDR3/4 at 1.3-2.6 nJ per 64-bit access at 7 nm); we use the low end.
HBM: M. O'Connor et al., "Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth
Systems", MICRO-50, 2017: HBM2 about 3.9 pJ/bit per access (device + I/O), node independent.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from ._checks import finite_nonneg, positive

KB = 1024
MB = 1024 * 1024


@dataclass(frozen=True)
class OpEnergyTable:
    """Energy per operation (pJ) and per 64-bit memory access (pJ) at one process node.

    Attributes:
        name: label, e.g. "Horowitz ISSCC 2014, 45 nm".
        node_nm: process node (nm).
        int8_add, int8_mult, int32_add, int32_mult: integer ops (pJ).
        fp16_add, fp16_mult, fp32_add, fp32_mult: IEEE float ops (pJ).
        sram_8kb, sram_32kb, sram_1mb: one 64-bit read of an SRAM of that size (pJ).
        dram_64b: one 64-bit DRAM (DDR3/4) access (pJ).
        hbm_pj_per_bit: HBM access energy (pJ/bit).
        source: citation for the table.
        estimated: names of fields that are scaled or interpolated estimates, not published.
    """

    name: str
    node_nm: float
    int8_add: float
    int8_mult: float
    int32_add: float
    int32_mult: float
    fp16_add: float
    fp16_mult: float
    fp32_add: float
    fp32_mult: float
    sram_8kb: float
    sram_32kb: float
    sram_1mb: float
    dram_64b: float
    hbm_pj_per_bit: float
    source: str = ""
    estimated: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        owner = f"OpEnergyTable {self.name!r}"
        positive(owner, "node_nm", self.node_nm)
        for name in ENERGY_FIELDS:
            positive(owner, name, getattr(self, name))
        if not (self.sram_8kb <= self.sram_32kb <= self.sram_1mb):
            raise ValueError(f"{owner}: SRAM energies must grow with size (8 KB <= 32 KB <= 1 MB)")

    @property
    def int8_mac(self) -> float:
        """INT8 multiply-accumulate = INT8 mult + INT8 add (pJ); 0.23 pJ at 45 nm (report)."""
        return self.int8_mult + self.int8_add

    @property
    def fp16_mac(self) -> float:
        """FP16 multiply-accumulate = FP16 mult + FP16 add (pJ); 1.5 pJ at 45 nm (report)."""
        return self.fp16_mult + self.fp16_add

    @property
    def bf16_mac_fp32_acc(self) -> float:
        """16-bit multiply with FP32 accumulation, as GPU tensor cores do (pJ).

        ESTIMATE: FP16 mult + FP32 add of this table (BF16 rows are not used here).
        """
        return self.fp16_mult + self.fp32_add

    def sram_read_pj(self, size_bytes: float, bits: int = 64) -> float:
        """Energy of one ``bits``-wide read from an SRAM of ``size_bytes`` (pJ).

        Log-log interpolation through the 8 KB, 32 KB and 1 MB rows (energy ~ size**a, the
        wire-length scaling of Horowitz's table); outside [8 KB, 1 MB] the nearest segment's
        slope is extended (an EXTRAPOLATION, flagged in docs/hardware.md). Energy is taken as
        proportional to access width (``bits`` / 64).
        """
        positive("sram_read_pj", "size_bytes", size_bytes)
        positive("sram_read_pj", "bits", bits)
        pts = ((8 * KB, self.sram_8kb), (32 * KB, self.sram_32kb), (1 * MB, self.sram_1mb))
        (s0, e0), (s1, e1) = (pts[0], pts[1]) if size_bytes <= pts[1][0] else (pts[1], pts[2])
        slope = math.log(e1 / e0) / math.log(s1 / s0)
        e64 = e0 * (size_bytes / s0) ** slope
        return e64 * bits / 64.0

    def sram_pj_per_byte(self, size_bytes: float) -> float:
        """SRAM read energy per byte (pJ/B), a 64-bit access amortised over its 8 bytes."""
        return self.sram_read_pj(size_bytes, 64) / 8.0

    @property
    def hbm_pj_per_byte(self) -> float:
        """HBM energy per byte (pJ/B)."""
        return self.hbm_pj_per_bit * 8.0

    @property
    def dram_pj_per_byte(self) -> float:
        """DDR DRAM energy per byte (pJ/B): the 64-bit access energy over 8 bytes."""
        return self.dram_64b / 8.0

    def to_dict(self) -> dict:
        """Plain dict (JSON-able)."""
        d = asdict(self)
        d["estimated"] = list(self.estimated)
        return d


ENERGY_FIELDS: tuple[str, ...] = (
    "int8_add", "int8_mult", "int32_add", "int32_mult", "fp16_add", "fp16_mult",
    "fp32_add", "fp32_mult", "sram_8kb", "sram_32kb", "sram_1mb", "dram_64b", "hbm_pj_per_bit",
)

HOROWITZ_45NM = OpEnergyTable(
    name="Horowitz ISSCC 2014, 45 nm",
    node_nm=45.0,
    int8_add=0.03,     # Horowitz ISSCC 2014, 45 nm 0.9 V, energy table: 8-bit int add 0.03 pJ (= report's INT8 ADD)
    int8_mult=0.2,     # Horowitz ISSCC 2014: 8-bit int mult 0.2 pJ (report's INT8 MAC 0.23 = 0.2 + 0.03)
    int32_add=0.1,     # Horowitz ISSCC 2014: 32-bit int add 0.1 pJ
    int32_mult=3.1,    # Horowitz ISSCC 2014: 32-bit int mult 3.1 pJ
    fp16_add=0.4,      # Horowitz ISSCC 2014: 16-bit FP add 0.4 pJ
    fp16_mult=1.1,     # Horowitz ISSCC 2014: 16-bit FP mult 1.1 pJ (report's FP16 MAC 1.5 = 1.1 + 0.4)
    fp32_add=0.9,      # Horowitz ISSCC 2014: 32-bit FP add 0.9 pJ
    fp32_mult=3.7,     # Horowitz ISSCC 2014: 32-bit FP mult 3.7 pJ
    sram_8kb=10.0,     # Horowitz ISSCC 2014: 64-bit read, 8 KB cache/SRAM, 10 pJ
    sram_32kb=20.0,    # Horowitz ISSCC 2014: 64-bit read, 32 KB cache/SRAM, 20 pJ
    sram_1mb=100.0,    # Horowitz ISSCC 2014: 64-bit read, 1 MB cache/SRAM, 100 pJ
    dram_64b=1300.0,   # Horowitz ISSCC 2014: 64-bit DRAM access 1.3-2.6 nJ; low end used
    hbm_pj_per_bit=3.9,  # O'Connor et al. MICRO 2017 (Fine-Grained DRAM): HBM2 ~3.9 pJ/bit
    source=("M. Horowitz, Computing's energy problem, ISSCC 2014 (45 nm, 0.9 V); "
            "HBM: O'Connor et al., MICRO-50 2017"),
)

JOUPPI_7NM = OpEnergyTable(
    name="Jouppi et al. ISCA 2021, 7 nm",
    node_nm=7.0,
    int8_add=0.007,    # Jouppi et al. ISCA 2021 (TPUv4i), Table 2, 7 nm: int8 add 0.007 pJ
    int8_mult=0.07,    # Jouppi et al. ISCA 2021, Table 2, 7 nm: int8 mult 0.07 pJ
    int32_add=0.03,    # Jouppi et al. ISCA 2021, Table 2, 7 nm: int32 add 0.03 pJ
    int32_mult=1.48,   # Jouppi et al. ISCA 2021, Table 2, 7 nm: int32 mult 1.48 pJ
    fp16_add=0.16,     # 7 nm FP16 add 0.16 pJ as quoted in Wang et al. (BitNet) 2023, Table 2 (not re-checked against Jouppi's primary table)
    fp16_mult=0.34,    # 7 nm FP16 mult 0.34 pJ, Wang et al. (BitNet) 2023, Table 2 (also quoted by BitNet-derived docs)
    fp32_add=0.38,     # Jouppi et al. ISCA 2021, Table 2, 7 nm: FP32 add 0.38 pJ
    fp32_mult=1.31,    # Jouppi et al. ISCA 2021, Table 2, 7 nm: FP32 mult 1.31 pJ
    sram_8kb=7.5,      # Jouppi et al. ISCA 2021, Table 2, 7 nm: 8 KB SRAM read 7.5 pJ (64-bit access)
    sram_32kb=7.5 * (14.0 / 7.5) ** (math.log(4) / math.log(128)),  # INTERPOLATED (log-log, 8 KB..1 MB): ~8.96 pJ
    sram_1mb=14.0,     # Jouppi et al. ISCA 2021, Table 2, 7 nm: 1 MB SRAM read 14 pJ (64-bit access)
    dram_64b=1300.0,   # Jouppi et al. ISCA 2021, Table 2: DDR3/4 1.3-2.6 nJ, unchanged from 45 nm; low end
    hbm_pj_per_bit=3.9,  # O'Connor et al. MICRO 2017: HBM2 ~3.9 pJ/bit (a DRAM device figure, not node-scaled)
    source=("N. P. Jouppi et al., Ten Lessons From Three Generations Shaped Google's TPUv4i, ISCA 2021, "
            "Table 2 (7 nm); FP16 rows via Wang et al., BitNet, 2023, Table 2; HBM: O'Connor et al. 2017"),
    estimated=("sram_32kb",),
)


def table_for_node(node_nm: float) -> OpEnergyTable:
    """Op-energy table at ``node_nm`` between 7 and 45 nm (pJ).

    45 nm and 7 nm return the published tables. Other nodes are SCALED ESTIMATES: each energy
    is interpolated geometrically in log(node), ``E = E45 * (E7/E45) ** f`` with
    ``f = ln(45/node) / ln(45/7)``; DRAM and HBM rows are equal in both tables and so unchanged.

    Raises:
        ValueError: ``node_nm`` outside [7, 45] (no published anchor to extrapolate from).
    """
    node = positive("table_for_node", "node_nm", node_nm)
    if node == 45.0:
        return HOROWITZ_45NM
    if node == 7.0:
        return JOUPPI_7NM
    if not 7.0 <= node <= 45.0:
        raise ValueError(f"table_for_node: node_nm must be within [7, 45] nm (published anchors), got {node_nm}")
    f = math.log(45.0 / node) / math.log(45.0 / 7.0)
    values = {
        name: getattr(HOROWITZ_45NM, name) * (getattr(JOUPPI_7NM, name) / getattr(HOROWITZ_45NM, name)) ** f
        for name in ENERGY_FIELDS
    }
    scaled = tuple(n for n in ENERGY_FIELDS if getattr(HOROWITZ_45NM, n) != getattr(JOUPPI_7NM, n))
    return OpEnergyTable(
        name=f"scaled estimate, {node:g} nm (log-node interpolation 45 nm <-> 7 nm)",
        node_nm=node,
        source=f"interpolated between {HOROWITZ_45NM.source} and {JOUPPI_7NM.source}",
        estimated=scaled,
        **values,
    )


def with_overrides(table: OpEnergyTable, **changes: float) -> OpEnergyTable:
    """A copy of ``table`` with some energies replaced (validated); marks them as estimated."""
    for k, v in changes.items():
        if k not in ENERGY_FIELDS:
            raise ValueError(f"with_overrides: unknown energy field {k!r}; valid: {', '.join(ENERGY_FIELDS)}")
        finite_nonneg("with_overrides", k, v)
    est = tuple(sorted(set(table.estimated) | set(changes)))
    return replace(table, estimated=est, **changes)


def table_bounds(table: OpEnergyTable) -> tuple[OpEnergyTable, OpEnergyTable]:
    """Declared (low, high) tables around ``table``'s ESTIMATED fields (pJ).

    * A node interpolated between 7 and 45 nm (:func:`table_for_node`): each scaled energy lies
      between its 7 nm (Jouppi 2021) and 45 nm (Horowitz 2014) values, the two published anchors.
    * The 7 nm 32 KB SRAM row (log-log interpolated, not published): between the published
      8 KB and 1 MB rows.
    * Published fields are not moved. Fields of a user table marked estimated by
      :func:`with_overrides` get a factor-2 band.
    """
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for name in table.estimated:
        if name not in ENERGY_FIELDS:
            continue
        v = getattr(table, name)
        a, b = getattr(JOUPPI_7NM, name), getattr(HOROWITZ_45NM, name)
        if table.node_nm not in (7.0, 45.0) and 7.0 < table.node_nm < 45.0 and min(a, b) <= v <= max(a, b):
            low[name], high[name] = min(a, b), max(a, b)
        elif name == "sram_32kb":
            low[name], high[name] = table.sram_8kb, table.sram_1mb
        else:
            low[name], high[name] = v / 2.0, v * 2.0
    lo_t = replace(table, name=table.name + " (low bound)", **low)
    hi_t = replace(table, name=table.name + " (high bound)", **high)
    return lo_t, hi_t
