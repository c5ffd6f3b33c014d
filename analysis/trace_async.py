"""Run a :class:`TraceWriter` on its own thread, fed through a bounded queue.

The producer (a capture's forward hooks) only hands rows over; checks that wait for data
(``ready``), chunk assembly, compression hand-off, HDF5 writes and the commit all run on
the writer thread. The first exception raised there is kept: every later call in the
producer raises it (the same exception object, with a note saying where it came from),
the remaining queued work is skipped and the temporary file is deleted, so a failure
never leaves a half-written trace.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Callable

from .fileio import CommitOnExit
from .trace_writer import TraceWriter

_STOP = object()
_POLL_S = 0.05  # how often a blocked producer looks for a failure of the writer thread


class AsyncTraceWriter(CommitOnExit):
    """A :class:`TraceWriter` whose calls run, in order, on one writer thread.

    Args:
        writer: a freshly opened TraceWriter; from now on only the writer thread uses it.
        max_items: queued calls at most (the bound on work in flight; data memory is
            bounded by the producer's own buffers, see ``release`` in :meth:`append`).
        deferred: the thread works only when asked (:meth:`drain`) and at close, so that
            on a CPU whose cores the producer keeps busy it never competes with it: the
            producer waits while the queued work runs on all cores (bounded by
            ``max_items`` and the producer's buffers), then goes on alone.

    Use as a context manager: a clean exit waits for the queue and commits; an exception
    (in the caller or on the writer thread) discards the temporary file.
    """

    def __init__(self, writer: TraceWriter, *, max_items: int = 256, deferred: bool = False) -> None:
        if not isinstance(writer, TraceWriter):
            raise TypeError(f"writer must be a TraceWriter, got {type(writer).__name__}")
        if not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1:
            raise ValueError(f"max_items must be a positive int, got {max_items!r}")
        self.writer = writer
        self.path = writer.path
        self._queue: queue.Queue = queue.Queue(maxsize=max_items)
        self._error: BaseException | None = None
        self._skip = False  # set by abort: drop what is still queued
        self._done = False
        self.deferred = bool(deferred)
        self._wake = threading.Condition()
        self._asked = 0  # drains asked for (deferred mode)
        self._drained = 0  # drains finished
        self._thread = threading.Thread(target=self._run, name="trace-writer", daemon=True)
        self._thread.start()

    # -- producer side -----------------------------------------------------------------
    def add_layer(self, info: Any, *, same_input_as: str | None = None) -> None:
        """Queue :meth:`TraceWriter.add_layer`."""
        self._put("add_layer", (info,), {"same_input_as": same_input_as})

    def append(
        self, name: str, counts: Any, vth: Any, *, ready: Callable[[], None] | None = None,
        release: Callable[[], None] | None = None,
    ) -> None:
        """Queue :meth:`TraceWriter.append`; ``counts`` and ``vth`` are handed over.

        ``ready`` runs on the writer thread before the arrays are read (e.g. wait for an
        asynchronous device-to-host copy and check what it brought; an exception there
        fails the trace). ``release`` is called once nothing reads ``counts`` any more
        (chunks are compressed from them in place); the caller must not modify the arrays
        before that (without ``release``: never).
        """
        self._put("append", (name, counts, vth), {"release": release}, ready, release)

    def append_tokens(self, ids: Any, offsets: Any = None) -> None:
        """Queue :meth:`TraceWriter.append_tokens` (the arrays are handed over)."""
        self._put("append_tokens", (ids, offsets), {})

    def begin_prompt(self, text: str | None = None) -> None:
        """Queue :meth:`TraceWriter.begin_prompt`."""
        self._put("begin_prompt", (text,), {})

    def drain(self, wait: bool = True) -> None:
        """Deferred mode: have the thread write everything queued so far (and wait for it).
        Raises the writer thread's exception, if it had one."""
        with self._wake:
            self._asked += 1
            ticket = self._asked
            self._wake.notify_all()
            while wait and self._drained < ticket and self._error is None and self._thread.is_alive():
                self._wake.wait(_POLL_S)
        self.check()

    def check(self) -> None:
        """Raise the writer thread's exception, if it had one."""
        if self._error is not None:
            raise self._error

    def _put(self, op: str, args: tuple, kw: dict, ready: Any = None, release: Any = None) -> None:
        if self._done:
            raise ValueError(f"trace writer for {self.path} is closed")
        item = (op, args, kw, ready, release)
        while True:  # bounded queue: wait for room, but never past a failure of the writer thread
            self.check()
            try:
                if self.deferred:
                    self._queue.put_nowait(item)
                else:
                    self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if self.deferred:
                    self.drain()

    # -- writer thread -------------------------------------------------------------------
    def _next(self) -> Any:
        """The next queued call; in deferred mode only while a drain is asked for (a finished
        drain first writes what the compressors hold)."""
        if not self.deferred:
            return self._queue.get()
        while True:
            with self._wake:
                while self._drained == self._asked:
                    self._wake.wait()
                ticket = self._asked
            try:
                return self._queue.get_nowait()
            except queue.Empty:
                try:
                    if self._error is None and not self._skip:
                        self.writer.flush()
                except BaseException as e:
                    self._fail(e)
                with self._wake:
                    self._drained = ticket
                    self._wake.notify_all()

    def _fail(self, e: BaseException) -> None:
        if self._error is None:
            if hasattr(e, "add_note"):  # Python >= 3.11
                e.add_note(f"(raised in the trace writer thread while writing {self.path})")
            self._error = e

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is _STOP:
                return
            op, args, kw, ready, release = item
            lent = False
            try:
                if self._error is None and not self._skip:
                    if ready is not None:
                        ready()
                    lent = release is not None  # from here the TraceWriter calls release
                    getattr(self.writer, op)(*args, **kw)
            except BaseException as e:  # kept for the producer; the thread goes on draining
                self._fail(e)
            finally:
                if release is not None and not lent:
                    release()

    def _stop(self) -> None:
        while True:
            try:
                self._queue.put(_STOP, timeout=_POLL_S)
                break
            except queue.Full:  # the thread is draining (deferred: once asked to)
                if self.deferred:
                    self.drain(wait=False)
        if self.deferred:
            with self._wake:
                self._asked += 1
                self._wake.notify_all()
        self._thread.join()

    # -- commit / abort --------------------------------------------------------------------
    def close(self) -> Path:
        """Wait for every queued call, then commit (:meth:`TraceWriter.close`); raise the writer
        thread's exception instead if it had one (the temporary file is then gone)."""
        if self._done:
            self.check()
            return self.path
        self._done = True
        self._stop()
        if self._error is not None:
            self.writer.abort()
            raise self._error
        return self.writer.close()

    def abort(self) -> None:
        """Drop what is queued and delete the temporary file."""
        if not self._done:
            self._done = True
            self._skip = True
            self._stop()
        self.writer.abort()
