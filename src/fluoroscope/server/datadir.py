"""The embedded store's data directory: made, checked writable, and held by one server.

:func:`claim_data_dir` runs before the store is opened. It creates the directory (and
its parents), checks that a file can be written in it, and takes an exclusive advisory
lock on ``server.pid`` inside it, writing this process's id there. Each failure raises
:class:`StartupError` with one sentence naming the path and the operating system's
reason; when another server holds the lock, the sentence names that process (its pid,
and its command line where ``/proc`` shows it). The lock lasts until
:meth:`DataDirLock.release` or the process ends; the operating system drops it when
the process dies, so a crash never leaves the directory locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import Final

from fluoroscope.model.errors import FluoroscopeError

__all__ = ["LOCK_FILE", "DataDirLock", "StartupError", "claim_data_dir"]

LOCK_FILE: Final = "server.pid"


class StartupError(FluoroscopeError):
    """The server cannot start; the message says why in one sentence, for a person."""


class DataDirLock:
    """The lock on a data directory held by this process (see the module docstring)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Drop the lock (idempotent); the pid file stays, its lock is what counts."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _blocking_file(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists but is not a
    directory, if that is why it cannot be made."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _holder(lock_file: Path) -> str:
    """Who holds ``lock_file``: 'pid N (command line)', or '' when it cannot be told."""
    try:
        pid = int(lock_file.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return ""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"pid {pid}"
    command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    return f"pid {pid}: {command}" if command else f"pid {pid}"


def claim_data_dir(path: Path) -> DataDirLock:
    """Create ``path`` if needed, check it is writable, and lock it for this process."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = _blocking_file(path)
        if blocker == path:
            raise StartupError(f"the data directory {path} is a file, not a directory") from exc
        if blocker is not None:
            raise StartupError(
                f"cannot create the data directory {path}: {blocker} is a file, not a directory"
            ) from exc
        raise StartupError(f"cannot create the data directory {path}: {_reason(exc)}") from exc
    probe = path / f".write-check-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"the data directory {path} is not writable: {_reason(exc)}") from exc
    lock_file = path / LOCK_FILE
    try:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StartupError(f"cannot write {lock_file}: {_reason(exc)}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            raise StartupError(f"cannot lock {lock_file}: {_reason(exc)}") from exc
        holder = _holder(lock_file)
        raise StartupError(
            f"the data directory {path} is in use by another Fluoroscope server"
            f"{f' ({holder})' if holder else ''}: stop it, or give this one another "
            "--data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    return DataDirLock(path, fd)
