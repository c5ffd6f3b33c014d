"""Every file and folder the package writes goes through here: atomic, non-clobbering, umask modes.

- :func:`atomic_file` / :func:`atomic_paths`: write temp files in the target's folder; on success
  they are fsynced and renamed onto their targets (a hard link when ``overwrite`` is False, so a
  target that appeared meanwhile is never clobbered); on an exception they are removed.
- :func:`stage_folder` / :func:`publish_folder`: build a whole folder in a hidden sibling, then
  move it into place (an old folder is removed only after the new one is in).
- Modes: new files get ``0o666 & ~umask`` and new folders ``0o777 & ~umask``, like any other
  tool (``mkstemp``/``mkdtemp`` alone would give 0600/0700).
- Errors: :class:`OutputError` (an ``OSError``) naming the path and the cause; its subclasses
  are also the matching built-in errors (``FileExistsError``, ``FileNotFoundError`` ...).
  A full disk (or quota, or file size limit) is :class:`DiskFullError`: "disk full while
  writing PATH (N MiB free on FOLDER)"; :func:`disk_full_errno` recognises it also in h5py's and
  numpy's messages, which do not always set ``errno``.
"""
from __future__ import annotations

import errno as _errno
import os
import re
import shutil
import tempfile
import contextlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = [
    "OutputError", "DiskFullError", "OutputExistsError", "OutputFolderMissingError", "OutputIsFolderError", "OutputPermissionError",
    "umask", "file_mode", "folder_mode", "check_target", "temp_file", "commit", "atomic_paths", "atomic_file",
    "write_text", "write_bytes", "stage_folder", "publish_folder", "fsync_path", "disk_full_errno",
    "disk_full_error", "free_mib", "Writeback",
]


class OutputError(OSError):
    """An output could not be written; ``path`` names it and the message says why."""

    def __init__(self, path: Any, reason: str, code: int | None = None) -> None:
        super().__init__(f"{reason}")
        self.path = Path(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else path
        self.reason = reason
        if code is not None:
            self.errno = code
        self.filename = str(path)

    def __str__(self) -> str:
        return self.reason


class OutputExistsError(OutputError, FileExistsError):
    """The target exists and overwriting was not asked for."""


class OutputFolderMissingError(OutputError, FileNotFoundError, ValueError):
    """The folder the output should go into does not exist (also a ValueError, as bad input)."""


class OutputIsFolderError(OutputError, IsADirectoryError, ValueError):
    """The target path is a folder, not a file name."""


class OutputPermissionError(OutputError, PermissionError):
    """The folder may not be written to."""


class DiskFullError(OutputError):
    """No space left (disk full, quota exceeded or the file size limit reached)."""


_DISK_FULL = (_errno.ENOSPC, _errno.EDQUOT, _errno.EFBIG)
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)|\[Errno (\d+)\]")


def disk_full_errno(e: BaseException) -> int | None:
    """ENOSPC, EDQUOT or EFBIG if ``e`` (or an error it was raised from) reports one, else None.

    h5py puts the C errno in its message ("errno = 28"); numpy's ``tofile`` reports a short
    write as "N requested and M written" without errno (counted as ENOSPC).
    """
    seen = 0
    while e is not None and seen < 8:
        code = getattr(e, "errno", None)
        if code in _DISK_FULL:
            return code
        for m in _ERRNO_IN_TEXT.finditer(str(e)):
            code = int(m.group(1) or m.group(2))
            if code in _DISK_FULL:
                return code
        if isinstance(e, OSError) and re.search(r"\d+ requested and \d+ written", str(e)):
            return _errno.ENOSPC
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def _short_write_cause(path: Any) -> int:
    """EFBIG when a finite RLIMIT_FSIZE is below the free space (the limit, not the disk, stopped
    a write that reported no errno), else ENOSPC."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return _errno.ENOSPC
    if limit != resource.RLIM_INFINITY and limit >= 0 and free_mib(Path(os.fspath(path)).parent) * 2**20 > limit:
        return _errno.EFBIG
    return _errno.ENOSPC


def free_mib(path: Any) -> float:
    """Free space (MiB) on the file system holding ``path`` (its nearest existing folder); -1 if unknown."""
    p = Path(os.fspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free / 2**20
    except OSError:
        return -1.0


def disk_full_error(path: Any, code: int = _errno.ENOSPC, what: str | None = None,
                    free: float | None = None, action: str | None = None) -> DiskFullError:
    """The one-line error for a full disk while writing ``path`` (``what`` names it if given;
    ``free``: MiB free when it happened, measured now if not given)."""
    name = what or str(path)
    folder = Path(os.fspath(path)).parent
    free = free_mib(folder) if free is None else free
    where = f"{free:.1f} MiB free on {folder}" if free >= 0 else f"free space on {folder} unknown"
    cause = {_errno.EDQUOT: "disk quota exceeded", _errno.EFBIG: "file size limit reached"}.get(code, "disk full")
    if action:  # "cannot write PATH: disk full (...)"
        return DiskFullError(path, f"{action} {name}: {cause} ({where}); free space and run again", code)
    return DiskFullError(path, f"{cause} while writing {name} ({where}); free space and run again", code)


_CAUSES = {
    _errno.ENOSPC: "disk full",
    _errno.EDQUOT: "disk quota exceeded",
    _errno.EACCES: "permission denied",
    _errno.EPERM: "permission denied",
    _errno.EROFS: "read-only file system",
    _errno.ENOENT: "folder does not exist",
}


def as_output_error(e: OSError, path: Any, action: str = "cannot write") -> OutputError:
    """``e`` as an :class:`OutputError` naming ``path`` and the cause (returned unchanged if it is one)."""
    if isinstance(e, OutputError):
        return e
    full = disk_full_errno(e)
    if full is not None:
        if full == _errno.ENOSPC and getattr(e, "errno", None) is None:  # a short write: which limit?
            full = _short_write_cause(path)
        return disk_full_error(path, full, action=action)
    cause = _CAUSES.get(e.errno or -1)
    detail = e.strerror or str(e)
    reason = f"{action} {path}: {cause} ({detail})" if cause and cause not in detail.lower() else f"{action} {path}: {detail}"
    cls = {_errno.EACCES: OutputPermissionError, _errno.EPERM: OutputPermissionError,
           _errno.ENOENT: OutputFolderMissingError, _errno.EEXIST: OutputExistsError}.get(e.errno or -1, OutputError)
    return cls(path, reason, e.errno)


# ----------------------------------------------------------------------------- modes


def umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # other systems: set and restore (not thread-safe, only a fallback)
    os.umask(old)
    return old


def file_mode() -> int:
    """Mode of a new file: ``0o666`` minus the umask."""
    return 0o666 & ~umask()


def folder_mode() -> int:
    """Mode of a new folder: ``0o777`` minus the umask."""
    return 0o777 & ~umask()


# ----------------------------------------------------------------------------- files


def check_target(path: Any, overwrite: bool = False) -> Path:
    """Validate an output file path before any work is done; return it absolute.

    Raises:
        TypeError: ``path`` is not a str or path-like.
        OutputFolderMissingError: its folder does not exist.
        OutputIsFolderError: ``path`` is a folder.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"output path must be a str or os.PathLike, got {type(path).__name__}")
    final = Path(path).expanduser().absolute()
    if not final.parent.is_dir():
        raise OutputFolderMissingError(final, f"output directory {final.parent} does not exist (for {final.name})",
                                       _errno.ENOENT)
    if final.is_dir():
        raise OutputIsFolderError(final, f"output path {final} is a directory; give a file name", _errno.EISDIR)
    if final.exists() and not overwrite:
        raise OutputExistsError(final, f"{final} already exists; pass overwrite=True to replace it", _errno.EEXIST)
    return final


def fsync_path(path: Path, directory: bool = False) -> None:
    """fsync a file (errors propagate) or a folder (best effort: not every platform can)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:  # one seam for tests that simulate a full disk
    fsync_path(path)


def _load_sync_file_range() -> Any:
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
        fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        return fn
    except (OSError, AttributeError):  # not Linux
        return None


_SYNC_FILE_RANGE = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writeback of the dirty pages, do not wait for it


class Writeback:
    """Start writing a file's dirty pages to disk in the background (Linux ``sync_file_range``,
    which returns without waiting; a no-op elsewhere), so that the fsync of the commit waits
    for the last few MB instead of all of them (measured: 37 MB, fsync 17 ms -> 1 ms once written
    back). Nothing here is a durability guarantee: the commit's fsync still is."""

    def __init__(self, path: Path, every: int = 8 << 20) -> None:
        self.every, self.pending, self.fd = every, 0, None
        if _SYNC_FILE_RANGE is not None:
            with contextlib.suppress(OSError):
                self.fd = os.open(path, os.O_RDONLY)

    def wrote(self, nbytes: int) -> None:
        """Count ``nbytes`` written; start writeback once ``every`` bytes are pending."""
        self.pending += nbytes
        if self.pending >= self.every:
            self.start()

    def start(self) -> None:
        """Start writeback of everything written so far."""
        self.pending = 0
        if self.fd is not None:
            _SYNC_FILE_RANGE(self.fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # errors ignored: only a hint

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            with contextlib.suppress(OSError):
                os.close(fd)


def temp_file(final: Path) -> Path:
    """An empty temp file beside ``final`` with the mode a plain ``open`` would give."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as e:
        raise as_output_error(e, final) from e
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    return Path(name)


def commit(tmp: Path, final: Path, overwrite: bool) -> None:
    """fsync ``tmp`` and move it onto ``final`` atomically, never clobbering unless ``overwrite``."""
    try:
        _fsync_file(tmp)
        if overwrite:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)  # atomic "create if absent"
            except FileExistsError:
                raise OutputExistsError(final, f"{final} appeared while it was written; not overwritten",
                                        _errno.EEXIST) from None
            except OutputError:
                raise
            except OSError:  # file system without hard links: check, then rename
                if final.exists():
                    raise OutputExistsError(final, f"{final} already exists; pass overwrite=True to replace it",
                                            _errno.EEXIST) from None
                os.replace(tmp, final)
            else:
                tmp.unlink()
    except OutputError:
        raise
    except OSError as e:
        raise as_output_error(e, final) from e
    fsync_path(final.parent, directory=True)


class CommitOnExit:
    """Context manager of a writer that commits its file with ``close()`` and discards it with
    ``abort()``: a clean ``with`` block commits, an exception aborts (and propagates)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@contextmanager
def atomic_paths(targets: Sequence[Any], overwrite: bool = False) -> Iterator[list[Path]]:
    """Yield temp paths (same folders as ``targets``) to write; on success they become the targets.

    Every target is checked first (:func:`check_target`); on a clean exit all temp files are
    fsynced and renamed in the given order; on an exception they are removed, no target touched.
    """
    finals = [check_target(t, overwrite) for t in targets]
    tmps: list[Path] = []
    try:
        for final in finals:
            tmps.append(temp_file(final))
        try:
            yield list(tmps)
        except (OSError, RuntimeError) as e:  # a short write, a full disk ...: name the file and the cause
            if isinstance(e, OutputError) or not (isinstance(e, OSError) or disk_full_errno(e)):
                raise
            raise as_output_error(e if isinstance(e, OSError) else OSError(disk_full_errno(e), str(e)),
                                  finals[0]) from e
        for tmp, final in zip(tmps, finals):
            commit(tmp, final, overwrite)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: Any, overwrite: bool = False) -> Iterator[Path]:
    """Yield one temp path beside ``path``; when the block succeeds it becomes ``path``."""
    with atomic_paths([path], overwrite) as (tmp,):
        yield tmp


def write_bytes(path: Any, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns the absolute path."""
    with atomic_file(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path).expanduser().absolute()


def write_text(path: Any, text: str, overwrite: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the absolute path."""
    return write_bytes(path, text.encode("utf-8"), overwrite)


# ----------------------------------------------------------------------------- folders


def stage_folder(folder: Any, overwrite: bool = False) -> Path:
    """Check ``folder`` can be (re)placed, then make the hidden sibling to build it in.

    The parent folder is created if missing. A non-empty ``folder`` needs ``overwrite``.
    """
    folder = Path(folder).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(folder, f"output path {folder} exists and is not a folder", _errno.EEXIST)
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise OutputExistsError(folder, f"output folder {folder} is not empty; pass --overwrite to replace it",
                                _errno.EEXIST)
    if folder.is_dir() and overwrite:  # the old folder must be deletable once replaced: check now, before any work
        for d, _, _ in os.walk(folder):
            if not os.access(d, os.W_OK | os.X_OK):
                raise OutputPermissionError(folder, f"cannot replace {folder}: {d} may not be modified, so the old "
                                            "folder could not be deleted", _errno.EACCES)
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=parent))
    except OSError as e:
        err = as_output_error(e, parent, "cannot write into")
        raise err from e
    os.chmod(tmp, folder_mode())
    return tmp


def publish_folder(tmp: Path, folder: Any) -> None:
    """Move the finished folder ``tmp`` to ``folder``; an old ``folder`` is removed only after."""
    folder = Path(folder).expanduser().absolute()
    old = None
    try:
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
        try:
            os.replace(tmp, folder)
        except OSError:
            if old is not None:  # put the old folder back
                os.replace(old, folder)
                old = None
            raise
    except OSError as e:
        raise as_output_error(e, folder, "cannot publish") from e
    fsync_path(folder.parent, directory=True)
    if old is not None:
        failed: list[str] = []
        shutil.rmtree(old, onerror=lambda fn, p, exc: failed.append(f"{p}: {exc[1].strerror or exc[1]}"))
        if failed and old.exists():  # never exit 0 with a hidden copy left behind
            raise OutputError(
                old, f"{folder} was replaced, but its old content could not be deleted and is left in {old} "
                f"({failed[0]}); delete it by hand", getattr(_errno, "ENOTEMPTY", None))
