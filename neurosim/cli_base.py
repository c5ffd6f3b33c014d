"""What every ``neurosim`` command shares: its error types and opening a trace named on the command line."""
from __future__ import annotations

from pathlib import Path


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


class UsageError(CLIError):
    """A bad argument value, refused before any slow work starts: one line, exit code 2."""


def _open_trace(path: str):
    from analysis.trace import SpikeTrace

    if not Path(path).exists():
        raise CLIError(f"trace {path} does not exist")
    return SpikeTrace.open(path)
