"""The events of a token chunk, listed per step, shared by the engines and the counters.

An event is a non-zero slot ``spikes[t, token, channel]`` (value = polarity, +1 or -1).
Each step's events are listed in (token, channel) order; a *bag* is the run of events of
one (token, scale group) in a step: the engine adds each bag into that group's
accumulator row.

Two listings, same events:

- :class:`PlaneEvents` lists the events of a dense train ``[T, n, in]`` (bitwise schemes,
  whose windows are short, and explicit trains such as IF-neuron output).
- :class:`RateEvents` lists binary/ternary trains straight from the counts: a slot with
  count ``c`` fires ``sign(c)`` at steps ``0 .. |c|-1`` (ones first, then silence, as
  :func:`encoders.encode`), so step ``t``'s events are the slots with ``|c| > t``. The
  list of still-firing slots shrinks as ``t`` grows, so the work is proportional to the
  events, not to ``T x slots``; consecutive steps with the same firing set (the long tail
  of a heavy-tailed layer: ``T`` in the thousands) are listed once as a run.
"""
from __future__ import annotations

from typing import Union

from dataclasses import dataclass

import torch
import torch.nn.functional as F

import encoders

StepList = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (channel, polarity, bag offsets)
Run = tuple[int, int, StepList]  # steps t0 .. t1-1 all carry these events


@dataclass
class Tally:
    """Counters of one chunk (CPU int64 tensors): see :class:`hw_models.Activity`."""

    events_per_step: torch.Tensor  # [T]
    events_per_token: torch.Tensor  # [n]
    event_hist: torch.Tensor  # [T + 1]
    block_fetches: torch.Tensor  # [n_blocks] (step, token) pairs fetching each block


def _offsets(bag: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Start of each bag in a sorted bag-id list, plus the end: int64 [n_bags + 1]."""
    return torch.searchsorted(bag, torch.arange(n_bags + 1, device=bag.device))


def _bags(tok: torch.Tensor, ch: torch.Tensor, group_size: int, n_groups: int) -> torch.Tensor:
    return tok * n_groups + torch.div(ch, group_size, rounding_mode="floor") if n_groups > 1 else tok


class PlaneEvents:
    """Events of a dense spike train chunk ``[T, n, in]`` (int8, values in {-1, 0, 1}; graded
    trains: the integer payload, which the engines multiply into the weight)."""

    def __init__(self, spikes: torch.Tensor, group_size: int, n_groups: int, dtype: torch.dtype = torch.float32):
        spikes = spikes.contiguous()  # a token slice of a longer train is strided
        T, n, in_f = (int(d) for d in spikes.shape)
        self.spikes, self.T, self.n, self.in_features = spikes, T, n, in_f
        self.active = spikes != 0
        pad = n_groups * group_size - in_f
        grouped = (F.pad(self.active, (0, pad)) if pad else self.active).view(T, n, n_groups, group_size)
        self.bag_sizes = grouped.sum(dim=3)  # [T, n, G]
        self.offsets = torch.zeros(T * n * n_groups + 1, dtype=torch.int64, device=spikes.device)
        torch.cumsum(self.bag_sizes.view(-1), dim=0, out=self.offsets[1:])
        self.step_edges = self.offsets[:: n * n_groups].tolist()
        self.n_bags = n * n_groups
        flat = torch.nonzero(spikes.view(-1)).squeeze(1)  # (step, token, channel) order
        self.channel = torch.remainder(flat, in_f)
        if bool(torch.any(spikes < 0)) or bool(torch.any(spikes > 1)):  # bipolar, or graded payloads
            self.polarity = spikes.view(-1)[flat].to(dtype)
        else:  # unipolar train: every event is +1
            self.polarity = torch.ones(flat.shape[0], dtype=dtype, device=spikes.device)

    def steps(self) -> list[StepList | None]:
        """Per step: ``(channel, polarity, bag offsets relative to the step)`` or None if silent."""
        out: list[StepList | None] = []
        for t in range(self.T):
            a, b = self.step_edges[t], self.step_edges[t + 1]
            if a == b:
                out.append(None)
                continue
            offs = self.offsets[t * self.n_bags : (t + 1) * self.n_bags + 1] - a
            out.append((self.channel[a:b], self.polarity[a:b], offs))
        return out

    def runs(self) -> list[Run]:
        """Non-silent steps as runs of one step each: ``(t, t + 1, events)``."""
        return [(t, t + 1, ev) for t, ev in enumerate(self.steps()) if ev is not None]

    def plane(self, t: int) -> torch.Tensor:
        """int8 [n, in] spikes of step ``t``."""
        return self.spikes[t]

    def tally(self, n_blocks: int, block_columns: int) -> Tally:
        T = self.T
        per_slot = self.active.sum(dim=0, dtype=torch.int16 if T < 2**15 else torch.int64)
        return Tally(
            self.bag_sizes.sum(dim=(1, 2)).cpu(),
            self.bag_sizes.sum(dim=(0, 2)).cpu(),
            torch.bincount(per_slot.view(-1).to(torch.int64), minlength=T + 1).cpu(),
            _plane_block_fetches(self.active, n_blocks, block_columns).cpu(),
        )


class RateEvents:
    """Events of a binary/ternary train (or binary with sign split) listed from in-range counts.

    ``counts``: int [n, in] with ``|c| <= T``; a slot fires ``sign(c)`` at steps ``0 .. |c|-1``.
    """

    def __init__(self, counts: torch.Tensor, T: int, group_size: int, n_groups: int, dtype: torch.dtype = torch.float32):
        n, in_f = (int(d) for d in counts.shape)
        self.counts, self.T, self.n, self.in_features = counts, int(T), n, in_f
        self.group_size, self.n_groups, self.dtype = group_size, n_groups, dtype
        self.mag = counts.abs()

    def runs(self) -> list[Run]:
        """Runs of consecutive steps with identical events: ``(t0, t1, events)``.

        Slot (token, channel) fires at steps ``0 .. |c|-1``, so the firing set changes only
        at the distinct magnitudes ``u_1 < u_2 < ...``: steps ``[u_{i-1}, u_i)`` all carry the
        slots with ``|c| >= u_i``. A run's events are listed once; the engine applies them
        with the run's summed step weight (``t1 - t0`` for these unit-weight codes), which is
        exactly what applying them at each step of the run adds. Steps after the largest
        count are silent and omitted.
        """
        flat = torch.nonzero(self.counts.view(-1)).squeeze(1)  # firing slots, (token, channel) order
        if flat.numel() == 0:
            return []
        mag = self.mag.view(-1)[flat]
        pol = torch.sign(self.counts.view(-1)[flat]).to(self.dtype)
        tok = torch.div(flat, self.in_features, rounding_mode="floor")
        ch = torch.remainder(flat, self.in_features)
        bag = _bags(tok, ch, self.group_size, self.n_groups)
        n_bags = self.n * self.n_groups
        edges = [0] + torch.unique(mag).tolist()  # sorted distinct magnitudes (all >= 1)
        out: list[Run] = []
        for t0, t1 in zip(edges[:-1], edges[1:]):  # runs in step order; the firing list only shrinks
            if t0 > 0:
                keep = mag > t0
                mag, pol, ch, bag = mag[keep], pol[keep], ch[keep], bag[keep]
            out.append((int(t0), int(t1), (ch, pol, _offsets(bag, n_bags))))
        return out

    def plane(self, t: int) -> torch.Tensor:
        """int8 [n, in] spikes of step ``t``: ``sign(c)`` where ``|c| > t``."""
        return (torch.sign(self.counts) * (self.mag > t)).to(torch.int8)

    def tally(self, n_blocks: int, block_columns: int) -> Tally:
        T = self.T
        hist = torch.bincount(self.mag.view(-1).to(torch.int64), minlength=T + 1).cpu()
        # events at step t = slots with |c| > t = sum of hist[t+1:]
        per_step = torch.flip(torch.cumsum(torch.flip(hist[1:], (0,)), 0), (0,))
        pad = n_blocks * block_columns - self.in_features
        m = F.pad(self.mag, (0, pad)).view(self.n, n_blocks, block_columns).amax(dim=2)
        return Tally(
            per_step,
            self.mag.sum(dim=1).to(torch.int64).cpu(),
            hist,
            m.sum(dim=0).to(torch.int64).cpu(),  # a block is fetched at steps 0 .. max|c|-1
        )


def _plane_block_fetches(active: torch.Tensor, n_blocks: int, block_columns: int) -> torch.Tensor:
    """int64 [n_blocks]: (step, token) pairs in which each block of columns has an event."""
    T, n, in_f = (int(d) for d in active.shape)
    pad = n_blocks * block_columns - in_f
    a = F.pad(active, (0, pad)) if pad else active
    if block_columns % 8 == 0 and a.is_contiguous():
        # 8 flags per int64 word: a word is non-zero iff one of its 8 slots has an event,
        # and a sum of such non-negative words is non-zero iff any of them is.
        words = a.view(torch.uint8).view(torch.int64).view(T, n, n_blocks, block_columns // 8)
        hit = words.sum(dim=3) != 0
    else:
        hit = a.view(T, n, n_blocks, block_columns).any(dim=3)
    return hit.sum(dim=(0, 1))


def spike_train(counts: torch.Tensor, scheme: str, T: int, bit_order: str = "msb", sign_split: bool = False) -> torch.Tensor:
    """Dense spike train int8 [T, *counts.shape] of in-range counts (see :func:`encoders.encode`).

    With ``sign_split`` the negative parts travel as -1 events of the same scheme.
    """
    if not sign_split:
        return encoders.encode(counts, scheme, T, bit_order)
    pos = encoders.encode(counts.clamp(min=0), scheme, T, bit_order)
    neg = encoders.encode((-counts).clamp(min=0), scheme, T, bit_order)
    return pos.sub_(neg)


Events = Union[PlaneEvents, RateEvents]  # one chunk's spikes, as the engines consume them
