"""Atomic, non-clobbering file output: temp file in the target's directory, fsync, rename."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence


def check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """Validate an output path before any work is done; return it as a :class:`Path`.

    Raises:
        TypeError: ``path`` is not a str or path-like.
        ValueError: the parent directory is missing or ``path`` is a directory.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"output path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"output path {p} is a directory; give a file name")
    if not p.parent.is_dir():
        raise ValueError(f"output directory {p.parent} does not exist")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} already exists; pass overwrite=True to replace it")
    return p


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, target)
        return
    # Without overwrite, a hard link fails atomically if the target appeared meanwhile.
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it") from None
    except OSError:  # file system without hard links: check, then rename
        if target.exists():
            raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it") from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


@contextmanager
def atomic_paths(targets: Sequence[str | os.PathLike], overwrite: bool = False) -> Iterator[list[Path]]:
    """Yield temporary paths (same directories as ``targets``) to write; commit them on success.

    On normal exit every temp file is fsynced and renamed onto its target (in the given
    order), then the directories are fsynced. On an exception the temp files are removed
    and no target is touched.
    """
    paths = [check_target(t, overwrite) for t in targets]
    tmps: list[Path] = []
    try:
        for p in paths:
            fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
            os.close(fd)
            tmps.append(Path(name))
        yield list(tmps)
        for tmp in tmps:
            _fsync_file(tmp)
        for tmp, p in zip(tmps, paths):
            _commit(tmp, p, overwrite)
        for d in {p.parent for p in paths}:
            _fsync_dir(d)
    finally:
        for tmp in tmps:
            if tmp.exists():
                tmp.unlink()
