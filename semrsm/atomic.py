"""Output files written in full or not at all, whose temporaries never outlive their writer.

:class:`AtomicOutput` creates its temporary file next to the target *when it is made*, so
an unwritable place (a read-only folder, ``/proc``, a full disk of inodes) fails before a
long computation rather than after it; :meth:`AtomicOutput.write` fills it, fsyncs it and
renames it over the target. An exception (Ctrl-C included) removes the temporary and
leaves any previous file intact.

A writer killed outright (SIGKILL, a power cut) cannot remove its temporary, so the
temporary's name carries the writer: ``.<name>.<pid>-<host>.<random>.tmp``. Making an
output for ``<name>`` removes that name's temporaries whose writer process is gone (same
host, PID not running) or that are older than :data:`STALE_SECONDS` (other hosts, reused
PIDs, temporaries of older versions without a PID).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["STALE_SECONDS", "AtomicOutput", "discard_pending", "remove_stale_temporaries"]

#: a temporary this old is removed whoever wrote it (no output takes an hour to write)
STALE_SECONDS = 3600.0

#: the temporaries of this process not yet renamed or removed (for :func:`discard_pending`)
_pending: set[Path] = set()


def _host_tag() -> str:
    """Eight hex digits naming this machine (a PID means nothing on another host)."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _writer_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's process counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists but not ours, or not a PID we can ask about: keep it
    return True


def _stale(name: str, prefix: str, mtime: float, now: float, host: str) -> bool:
    """Whether temporary ``name`` (``prefix`` + ``<pid>-<host>.<random>.tmp``) is stale."""
    if now - mtime > STALE_SECONDS:
        return True
    writer = name[len(prefix):].split(".", 1)[0]
    pid, _, tag = writer.partition("-")
    return tag == host and pid.isdigit() and not _writer_alive(int(pid))


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``path`` left by killed writers; return what was removed.

    Only regular files named ``.<name>.*.tmp`` in ``path``'s folder are considered (links
    and folders are never touched); see the module doc for which are stale. Errors (a
    folder that cannot be listed, a file removed meanwhile) are ignored: this is cleanup.
    """
    path = Path(path)
    prefix = f".{path.name}."
    now, host, removed = time.time(), _host_tag(), []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and _stale(entry.name, prefix, info.st_mtime, now, host):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def discard_pending() -> None:
    """Remove every temporary of this process that was neither written nor discarded: for a
    process about to end without unwinding (``os._exit`` after a stop request)."""
    for tmp in list(_pending):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _pending.discard(tmp)


class AtomicOutput:
    """One output file: a temporary created now, renamed over ``path`` by :meth:`write`.

    Parameters
    ----------
    path : the file to produce; its folder is created when missing.
    label : how messages name it, e.g. ``"--out"``.

    Raises
    ------
    ValueError
        The folder cannot be created, or no file can be created in it (read-only,
        ``/proc``, no space or inodes); the message names the folder and the reason.
    """

    def __init__(self, path: str | os.PathLike, label: str = "output"):
        self.path = Path(path)
        self.label = label
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.path)
            fd, tmp = tempfile.mkstemp(
                dir=folder, prefix=f".{self.path.name}.{os.getpid()}-{_host_tag()}.", suffix=".tmp"
            )
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise ValueError(
                f"{label}: cannot create a file in {str(folder)!r} ({reason}); choose a "
                "writable folder"
            ) from None
        self._fd: int | None = fd
        self.tmp = Path(tmp)
        _pending.add(self.tmp)

    def write(self, fill: Callable[[IO[bytes]], Any]) -> Path:
        """Fill the temporary with ``fill(binary file)``, fsync it, rename it over the path.

        Any exception (KeyboardInterrupt included) removes the temporary and is re-raised.
        """
        if self._fd is None:
            raise ValueError(f"{self.label}: {str(self.path)!r} was already written or discarded")
        fd, self._fd = self._fd, None
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
        except BaseException:
            self._unlink()
            raise
        _pending.discard(self.tmp)
        return self.path

    def write_text(self, text: str) -> Path:
        """:meth:`write` of UTF-8 text, newlines as given."""
        return self.write(lambda f: f.write(text.encode("utf-8")))

    def discard(self) -> None:
        """Close and remove the temporary (no-op once written or discarded)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
            self._unlink()

    def _unlink(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)
        _pending.discard(self.tmp)

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()
