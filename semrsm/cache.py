"""On-disk, content-addressed cache for tokens, RSMs and uploaded files.

An entry is a set of named numpy arrays stored as one ``.npz`` file (never
pickled), found by a key that is a hash of *everything* that determines its
content (see :func:`content_key`). Guarantees:

* **atomic writes**: an entry is written to a temporary file in the same folder
  and moved into place with :func:`os.replace`, so a crash or a concurrent
  reader never sees half an entry;
* **corruption is a miss**: an entry that cannot be read (truncated, not a zip,
  wrong CRC) is deleted and reported as missing, so the caller recomputes it;
* **compute once**: :meth:`Cache.get_or_compute` holds an exclusive
  :func:`fcntl.flock` on a per-key lock file around "load, else compute and
  store", so two sessions (threads or processes) asking for the same entry
  compute it once;
* **size cap with LRU eviction**: every read refreshes the entry's modification
  time; after a write the least recently used entries are removed until the
  cache is under ``max_bytes``;
* **a full disk is a warning**: when a write fails with ``ENOSPC``/``EDQUOT`` the
  temporary file is removed, a :class:`CacheWarning` is issued and the computed
  value is still returned.

Location: ``$SEMRSM_CACHE_DIR`` or ``~/.cache/semrsm``; size cap:
``$SEMRSM_CACHE_MAX_BYTES`` or 2 GiB. Uploaded files are stored, content
addressed, under ``<root>/uploads`` and nowhere else.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Cache", "CacheWarning", "content_key", "default_cache_dir"]

DEFAULT_MAX_BYTES = 2 * 1024**3
_META = "__meta__"
_KEY_RE = re.compile(r"^[0-9a-f]{16,128}$")
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class CacheWarning(UserWarning):
    """Issued when the cache cannot store an entry (for example a full disk)."""


def default_cache_dir() -> Path:
    """Return the cache folder: ``$SEMRSM_CACHE_DIR`` or ``~/.cache/semrsm``."""
    env = os.environ.get("SEMRSM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "semrsm"


def _update(h: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged encoding of ``obj`` into the hash ``h``."""
    if obj is None:
        h.update(b"N")
    elif isinstance(obj, bool):
        h.update(b"B1" if obj else b"B0")
    elif isinstance(obj, (int, np.integer)):
        h.update(b"I" + str(int(obj)).encode() + b";")
    elif isinstance(obj, (float, np.floating)):
        h.update(b"F" + repr(float(obj)).encode() + b";")
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        h.update(b"S" + str(len(data)).encode() + b":" + data)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        h.update(b"Y" + str(len(data)).encode() + b":" + data)
    elif isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        h.update(b"A" + arr.dtype.str.encode() + repr(arr.shape).encode() + b":")
        h.update(arr.tobytes())
    elif isinstance(obj, Mapping):
        h.update(b"D" + str(len(obj)).encode() + b"{")
        for k in sorted(obj, key=str):
            _update(h, str(k))
            _update(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"L" + str(len(obj)).encode() + b"[")
        for item in obj:
            _update(h, item)
        h.update(b"]")
    elif isinstance(obj, Path):
        _update(h, str(obj))
    else:
        raise TypeError(
            f"cannot hash a {type(obj).__name__} into a cache key; pass str, numbers, bytes, "
            "numpy arrays, or lists/dicts of those"
        )


def content_key(*parts: Any) -> str:
    """Hash ``parts`` into a cache key.

    Parameters
    ----------
    *parts : str, int, float, bool, None, bytes, numpy.ndarray, list, tuple or dict
        Everything that determines the entry. Dicts are hashed with sorted keys,
        arrays by dtype, shape and bytes, so equal content gives equal keys.

    Returns
    -------
    str
        64 lowercase hex digits (SHA-256).

    Raises
    ------
    TypeError
        If a part has a type that has no canonical encoding.
    """
    h = hashlib.sha256()
    _update(h, list(parts))
    return h.hexdigest()


class Cache:
    """Content-addressed store of numpy arrays on disk.

    Parameters
    ----------
    root : str or Path, optional
        Cache folder, created if missing. Default: :func:`default_cache_dir`.
    max_bytes : int, optional
        Size cap for the entries; least recently used entries are evicted
        beyond it. Default: ``$SEMRSM_CACHE_MAX_BYTES`` or 2 GiB.

    Attributes
    ----------
    hits, misses, computes, write_failures : int
        Counters (per instance) for tests and the app's status line.
    last_warning : str or None
        The message of the last warning issued (for example a full disk), so a
        user interface can show it.

    Raises
    ------
    ValueError
        If ``max_bytes`` is not positive.
    """

    def __init__(self, root: str | os.PathLike | None = None, max_bytes: int | None = None):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        if max_bytes is None:
            env = os.environ.get("SEMRSM_CACHE_MAX_BYTES")
            max_bytes = int(env) if env else DEFAULT_MAX_BYTES
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.entries_dir = self.root / "entries"
        self.locks_dir = self.root / "locks"
        self.uploads_dir = self.root / "uploads"
        for d in (self.entries_dir, self.locks_dir, self.uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self.computes = 0
        self.write_failures = 0
        self.last_warning: str | None = None
        self._counter_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Cache(root={str(self.root)!r}, max_bytes={self.max_bytes})"

    # ------------------------------------------------------------------ paths
    def path(self, key: str) -> Path:
        """Return the file of entry ``key`` (which need not exist).

        Raises
        ------
        ValueError
            If ``key`` is not a hex digest (as made by :func:`content_key`).
        """
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ValueError(f"cache keys are hex digests from content_key(), got {key!r}")
        return self.entries_dir / key[:2] / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    # ------------------------------------------------------------------ read
    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """Read entry ``key``.

        Returns
        -------
        dict of str to numpy.ndarray, or None
            The stored arrays, or None when the entry is missing or unreadable
            (an unreadable file is deleted so that it is recomputed). The
            entry's metadata, if any, is under :meth:`meta`.
        """
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except FileNotFoundError:
            self._count("misses")
            return None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile):
            # Truncated or corrupted entry: drop it and let the caller recompute.
            with contextlib.suppress(OSError):
                path.unlink()
            self._count("misses")
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # LRU: last access = now
        self._count("hits")
        return arrays

    @staticmethod
    def meta(arrays: Mapping[str, np.ndarray]) -> dict:
        """Return the metadata dict stored with an entry (empty if none)."""
        raw = arrays.get(_META)
        if raw is None:
            return {}
        return json.loads(str(raw))

    # ------------------------------------------------------------------ write
    def save(
        self, key: str, arrays: Mapping[str, np.ndarray], *, meta: Mapping[str, Any] | None = None
    ) -> bool:
        """Store ``arrays`` (and JSON-able ``meta``) as entry ``key``, atomically.

        Parameters
        ----------
        key : str
            From :func:`content_key`.
        arrays : mapping of str to numpy.ndarray
            Numeric or string arrays; object arrays are refused (no pickle).
        meta : mapping, optional
            JSON-serialisable metadata, read back with :meth:`meta`.

        Returns
        -------
        bool
            True when stored; False when the disk was full (a
            :class:`CacheWarning` is issued and nothing partial is left).

        Raises
        ------
        ValueError
            If an array has dtype object or a name is reserved.
        """
        path = self.path(key)
        payload: dict[str, np.ndarray] = {}
        for name, arr in arrays.items():
            if name == _META:
                raise ValueError(f"{_META!r} is reserved for metadata; rename that array")
            arr = np.asarray(arr)
            if arr.dtype == object:
                raise ValueError(
                    f"array {name!r} has dtype object, which would need pickle; "
                    "convert it to a numeric or str dtype"
                )
            payload[name] = arr
        if meta is not None:
            payload[_META] = np.array(json.dumps(dict(meta), sort_keys=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if exc.errno in _DISK_FULL:
                self._count("write_failures")
                self._warn(
                    f"The cache at {self.root} is full (disk or quota): the result was computed "
                    "but not stored. Free some space or set SEMRSM_CACHE_DIR to another disk."
                )
                return False
            raise
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.evict(keep=key)
        return True

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Mapping[str, np.ndarray] | tuple[Mapping[str, np.ndarray], Mapping]],
    ) -> tuple[dict[str, np.ndarray], bool]:
        """Return entry ``key``, computing and storing it once when missing.

        Parameters
        ----------
        key : str
            From :func:`content_key`.
        compute : callable
            Called with no argument when the entry is missing; returns a mapping
            of arrays, or ``(arrays, meta)``.

        Returns
        -------
        arrays : dict of str to numpy.ndarray
            Includes the metadata array when ``meta`` was given (read it with
            :meth:`meta`).
        hit : bool
            True when served from the cache, False when ``compute`` ran here.
        """
        arrays = self.load(key)
        if arrays is not None:
            return arrays, True
        with self.lock(key):
            # Another session may have stored it while we waited for the lock.
            arrays = self.load(key)
            if arrays is not None:
                return arrays, True
            out = compute()
            self._count("computes")
            if isinstance(out, tuple):
                data, meta = out
            else:
                data, meta = out, None
            self.save(key, data, meta=meta)
            result = {k: np.asarray(v) for k, v in data.items()}
            if meta is not None:
                result[_META] = np.array(json.dumps(dict(meta), sort_keys=True))
            return result, False

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold an exclusive inter-process lock on ``key`` (``fcntl.flock``).

        flock locks belong to the open file description, so two threads of one
        process that each open the lock file also exclude each other.
        """
        self.path(key)  # validates the key
        lock_path = self.locks_dir / f"{key}.lock"
        with open(lock_path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ size
    def _entry_files(self) -> list[tuple[Path, float, int]]:
        out = []
        for p in self.entries_dir.glob("*/*.npz"):
            try:
                st = p.stat()
            except OSError:
                continue  # removed by another session meanwhile
            out.append((p, st.st_mtime, st.st_size))
        return out

    def size_bytes(self) -> int:
        """Total size of the stored entries in bytes (uploads not included)."""
        return sum(size for _, _, size in self._entry_files())

    def evict(self, keep: str | None = None) -> int:
        """Delete least recently used entries until the cache fits ``max_bytes``.

        Parameters
        ----------
        keep : str, optional
            A key never to evict (the entry just written).

        Returns
        -------
        int
            Number of entries removed.
        """
        files = self._entry_files()
        total = sum(size for _, _, size in files)
        if total <= self.max_bytes:
            return 0
        keep_name = f"{keep}.npz" if keep else None
        removed = 0
        for p, _, size in sorted(files, key=lambda t: t[1]):
            if total <= self.max_bytes:
                break
            if p.name == keep_name:
                continue
            try:
                p.unlink()
            except OSError:
                continue
            total -= size
            removed += 1
        return removed

    def clear(self) -> None:
        """Remove every entry (uploads and locks stay)."""
        for p, _, _ in self._entry_files():
            with contextlib.suppress(OSError):
                p.unlink()

    # ------------------------------------------------------------------ uploads
    def store_upload(self, name: str, data: bytes) -> str:
        """Store an uploaded file inside the cache folder.

        Parameters
        ----------
        name : str
            The file's name as the user gave it; only a short alphanumeric extension is
            kept (some readers, such as checkpoint loaders, go by the extension), never
            a path.
        data : bytes
            Its content.

        Returns
        -------
        str
            The SHA-256 of ``data``; read the file back with :meth:`read_upload` or
            locate it with :meth:`upload_path`. Identical content is stored once.
        """
        digest = hashlib.sha256(bytes(data)).hexdigest()
        if self._find_upload(digest) is not None:
            return digest
        ext = Path(str(name).replace("\\", "/")).suffix.lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,12}", ext):
            ext = ""
        path = self.uploads_dir / f"{digest}{ext}"
        fd, tmp = tempfile.mkstemp(dir=self.uploads_dir, prefix=".up.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if exc.errno in _DISK_FULL:
                self._warn(
                    f"No space left in {self.root} to keep the upload {Path(name).name!r}; "
                    "free some space or set SEMRSM_CACHE_DIR to another disk."
                )
            raise
        return digest

    def _find_upload(self, digest: str) -> Path | None:
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ValueError(f"upload ids are SHA-256 hex digests, got {digest!r}")
        for p in self.uploads_dir.glob(f"{digest}*"):
            if p.is_file() and (p.name == digest or p.name[64] == "."):
                return p
        return None

    def upload_path(self, digest: str) -> Path:
        """The file of an upload stored with :meth:`store_upload` (inside the cache folder).

        Raises
        ------
        ValueError
            If ``digest`` is not a SHA-256 hex digest.
        FileNotFoundError
            If no such upload is stored (upload the file again).
        """
        path = self._find_upload(digest)
        if path is None:
            raise FileNotFoundError(
                f"no upload {digest[:12]}... in {self.uploads_dir}; upload it again"
            )
        with contextlib.suppress(OSError):
            os.utime(path)
        return path

    def read_upload(self, digest: str) -> bytes:
        """Return the content of an upload stored with :meth:`store_upload`.

        Raises
        ------
        ValueError, FileNotFoundError
            As :meth:`upload_path`.
        """
        return self.upload_path(digest).read_bytes()

    # ------------------------------------------------------------------ misc
    def _count(self, name: str) -> None:
        with self._counter_lock:
            setattr(self, name, getattr(self, name) + 1)

    def _warn(self, message: str) -> None:
        self.last_warning = message
        warnings.warn(message, CacheWarning, stacklevel=3)

    def stats(self) -> dict[str, Any]:
        """Counters and size, for a status line."""
        return {
            "root": str(self.root),
            "hits": self.hits,
            "misses": self.misses,
            "computes": self.computes,
            "write_failures": self.write_failures,
            "size_bytes": self.size_bytes(),
            "max_bytes": self.max_bytes,
            "time": time.time(),
        }
