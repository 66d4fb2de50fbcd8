"""On-disk, content-addressed store of named numpy arrays (the cache's entries).

An entry is a set of named numpy arrays stored as one ``.npz`` file (never
pickled), found by a key that is a hash of *everything* that determines its
content (see :func:`content_key`). What the entries mean (tokens, RSMs, probabilities,
facts, tiles: their keys, arrays and checks) is :mod:`semrsm.cache_schema`'s; uploaded
files are kept in the same folder by :mod:`semrsm.uploads` (:attr:`Cache.uploads`).
Guarantees:

* **atomic writes**: an entry is written to a temporary file in the same folder
  and moved into place with :func:`os.replace`, so a crash or a concurrent
  reader never sees half an entry;
* **corruption is a miss**: an entry that cannot be read for any reason (truncated,
  not a zip, wrong CRC, a damaged array header, no manifest, not a regular file such as
  a FIFO or a device in its place) is deleted, a :class:`CacheWarning` says so, and it is
  reported as missing, so the caller recomputes it; only regular files are opened, so
  nothing in an entry's place can block a read;
* **versioned keys**: :data:`CACHE_FORMAT` is hashed into every key (:func:`content_key`,
  and so every key of :mod:`semrsm.cache_schema`, and :func:`semrsm.uploads.upload_digest`)
  and written into
  every entry's manifest, so a change of what an entry means, even with the same shapes,
  is never served from entries of another format;
* **compute once**: :meth:`Cache.get_or_compute` holds an exclusive
  :func:`fcntl.flock` on a per-key lock file around "load, else compute and
  store", so two sessions (threads or processes) asking for the same entry
  compute it once;
* **size cap with LRU eviction**: every read refreshes the entry's modification
  time; after a write the least recently used entries are removed until the
  cache is under ``max_bytes``;
* **entries are validated on read**: every entry carries a manifest (name, dtype, shape
  and CRC-32 of each array); an entry whose arrays are missing, of another shape or whose
  bytes do not match, or that lacks an array the caller requires, is dropped and recomputed;
* **a cache fault is a warning**: when a write fails for any reason of the file system
  (full disk or exhausted inodes, read-only or unwritable folder, a folder in an
  entry's place) the temporary file is removed, a :class:`CacheWarning` is issued and
  the computed value is still returned ("computed, not stored"); when the lock folder
  is unusable, sessions of this process still compute once (an in-process lock);
* **stale temporaries** (left by writers that were killed) count in the size cap and
  are removed once older than :data:`STALE_TMP_SECONDS`;

Location: ``$SEMRSM_CACHE_DIR`` or ``~/.cache/semrsm``; size cap:
``$SEMRSM_CACHE_MAX_BYTES`` (bytes, or with a suffix: ``500M``, ``2G``) or 2 GiB; a value
that is not a size (or is beyond :data:`MAX_SIZE`) gives a warning that says so, and the
default is used. Uploaded files are stored, content addressed, under ``<root>/uploads``
and nowhere else (:mod:`semrsm.uploads`).
"""

from __future__ import annotations

import contextlib
import decimal
import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "CACHE_FORMAT",
    "Cache",
    "CacheWarning",
    "content_key",
    "default_cache_dir",
    "parse_size",
]

#: Version of what entries mean. Part of every key and of every entry's manifest: raise it
#: whenever the content stored under the same inputs changes (another layout, another
#: normalisation, another meaning of an array), so old entries are never served.
CACHE_FORMAT = 1

DEFAULT_MAX_BYTES = 2 * 1024**3
_META = "__meta__"
_MANIFEST = "__manifest__"
#: A temporary file older than this (seconds) belongs to a writer that died: removed.
STALE_TMP_SECONDS = 3600.0
_SIZE_SUFFIX = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
                "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}
_KEY_RE = re.compile(r"^[0-9a-f]{16,128}$")
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
#: Largest accepted size cap: what a file offset can hold (8 EiB).
MAX_SIZE = 2**63 - 1


class CacheWarning(UserWarning):
    """Issued when the cache cannot store an entry (for example a full disk)."""


def parse_size(text: str) -> int:
    """``"2147483648"``, ``"500M"``, ``"2G"``, ``"1.5GiB"`` → bytes.

    Raises
    ------
    ValueError
        When ``text`` is not a positive size or is above :data:`MAX_SIZE`.
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([kKmMgGtT]i?)?[bB]?\s*", str(text))
    if not m:
        raise ValueError(
            f"{_clip(str(text))!r} is not a size: give a number of bytes, optionally with a "
            "suffix (for example 2000000000, 500M or 2G)"
        )
    whole = m.group(1).split(".")[0].lstrip("0")
    # Decimal, not float: a long digit string must not become inf (OverflowError); more
    # whole digits than MAX_SIZE has is too large whatever the suffix.
    too_long = len(whole) > len(str(MAX_SIZE))
    value = 0 if too_long else decimal.Decimal(m.group(1)) * _SIZE_SUFFIX[(m.group(2) or "").lower()]
    if too_long or value > MAX_SIZE:
        raise ValueError(
            f"{_clip(str(text))!r} is too large: the cache size is at most {MAX_SIZE} bytes"
        )
    if value < 1:
        raise ValueError(f"{_clip(str(text))!r}: the cache size must be positive")
    return int(value)


def _crc(arr: np.ndarray) -> int:
    flat = np.ascontiguousarray(arr).reshape(-1)
    return zlib.crc32(flat.view(np.uint8)) if flat.size else 0


def _array_specs(payload: Mapping[str, np.ndarray]) -> dict[str, list]:
    """name → [dtype, shape, CRC-32] for every array of an entry."""
    return {name: [arr.dtype.str, list(arr.shape), _crc(arr)] for name, arr in payload.items()}


def _manifest(payload: Mapping[str, np.ndarray]) -> np.ndarray:
    """The manifest array of an entry: compact JSON of the cache format and of
    :func:`_array_specs`, stored as bytes (one byte a character, not four)."""
    spec = {"format": CACHE_FORMAT, "arrays": _array_specs(payload)}
    return np.array(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())


def _manifest_problem(arrays: Mapping[str, np.ndarray]) -> str | None:
    """Why ``arrays`` (an entry as read) do not match their manifest, or None when they do.

    An entry without a manifest, or with one of another :data:`CACHE_FORMAT`, does not
    match: nothing says what its arrays mean.
    """
    raw = arrays.get(_MANIFEST)
    if raw is None:
        return "it has no manifest"
    spec = json.loads(raw.item())  # bytes or str; anything else raises, as a damaged entry
    if not isinstance(spec, dict) or spec.get("format") != CACHE_FORMAT:
        found = spec.get("format") if isinstance(spec, dict) else None
        return f"it was written in cache format {found!r}, not {CACHE_FORMAT}"
    listed = spec.get("arrays")
    if not isinstance(listed, dict) or set(listed) != set(arrays) - {_MANIFEST}:
        return "its arrays are not the ones its manifest lists"
    if _array_specs({k: arrays[k] for k in listed}) != listed:
        return "its arrays do not match the dtypes, shapes and CRC-32s of its manifest"
    return None


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
    """Hash ``parts`` and :data:`CACHE_FORMAT` into a cache key.

    Parameters
    ----------
    *parts : str, int, float, bool, None, bytes, numpy.ndarray, list, tuple or dict
        Everything that determines the entry. Dicts are hashed with sorted keys,
        arrays by dtype, shape and bytes, so equal content gives equal keys. The cache
        format is hashed too (read when called), so another format gives other keys.

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
    _update(h, ["semrsm-cache-format", CACHE_FORMAT, list(parts)])
    return h.hexdigest()


class _NotRegularFile(OSError):
    """Something other than a regular file (a FIFO, a device, a folder) is in an entry's place."""


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _open_regular(path: Path) -> BinaryIO:
    """Open ``path`` for reading only when it is a regular file, without following a link.

    ``O_NONBLOCK`` makes opening a FIFO return at once (a plain open waits for a writer
    forever); the file's type is then checked on the open descriptor, so it cannot be
    swapped between the check and the read.

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    OSError
        When it cannot be opened, is a symbolic link (``ELOOP``) or is not a regular file.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegularFile(errno.EINVAL, f"{_file_kind(mode)} is in its place")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_entry(path: Path) -> dict[str, np.ndarray]:
    """All arrays of the ``.npz`` at ``path`` (never pickled; regular files only)."""
    with _open_regular(path) as f, np.load(f, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


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
        self.hits = 0
        self.misses = 0
        self.computes = 0
        self.write_failures = 0
        self.last_warning: str | None = None
        self._counter_lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._lock_warned = False
        if max_bytes is None:
            env = os.environ.get("SEMRSM_CACHE_MAX_BYTES")
            max_bytes = DEFAULT_MAX_BYTES
            if env:
                try:
                    max_bytes = parse_size(env)
                except (ValueError, ArithmeticError) as err:  # also OverflowError
                    self._warn(
                        f"SEMRSM_CACHE_MAX_BYTES={_clip(env)!r} is not used: {err}. "
                        f"Using the default of {DEFAULT_MAX_BYTES / 2**30:.0f} GiB."
                    )
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.entries_dir = self.root / "entries"
        self.locks_dir = self.root / "locks"
        self.uploads_dir = self.root / "uploads"
        for d in (self.entries_dir, self.locks_dir, self.uploads_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                self._warn(
                    f"The cache folder {d} cannot be used ({_why(err)}): results are computed "
                    "but not stored. Fix its permissions or set SEMRSM_CACHE_DIR to another folder."
                )
        from semrsm.uploads import UploadStore  # imported here: uploads build on this module

        #: the uploaded files kept in this cache's folder (:class:`semrsm.uploads.UploadStore`)
        self.uploads = UploadStore(self.uploads_dir, warn=self._warn, where=str(self.root))

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
    def load(
        self,
        key: str,
        required: tuple[str, ...] | list[str] = (),
        valid: Callable[[dict[str, np.ndarray]], bool] | None = None,
    ) -> dict[str, np.ndarray] | None:
        """Read entry ``key``.

        Parameters
        ----------
        key : str
        required : names of arrays the entry must hold.
        valid : optional check of the arrays (for example their shapes); False means invalid.

        Returns
        -------
        dict of str to numpy.ndarray, or None
            The stored arrays, or None when the entry is missing, unreadable or invalid
            (missing a required array, failing ``valid``, or not matching its manifest of
            dtypes, shapes and CRC-32s); such a file is deleted so that it is recomputed.
            The entry's metadata, if any, is under :meth:`meta`.
        """
        path = self.path(key)
        try:
            arrays = _read_entry(path)
            problem = self._problem(arrays, required, valid)
        except FileNotFoundError:
            self._count("misses")
            return None
        except Exception as err:  # noqa: BLE001 - whatever a damaged file raises
            # numpy's header parser alone raises ValueError, SyntaxError, tokenize.TokenError,
            # MemoryError...: any failure to read an entry means it is unusable.
            problem = f"it cannot be read ({_describe(err)})"
        if problem is not None:
            self._reject(key, path, problem)
            return None
        arrays.pop(_MANIFEST, None)
        with contextlib.suppress(OSError):
            os.utime(path)  # LRU: last access = now
        self._count("hits")
        return arrays

    @staticmethod
    def _problem(
        arrays: dict[str, np.ndarray],
        required: tuple[str, ...] | list[str],
        valid: Callable[[dict[str, np.ndarray]], bool] | None,
    ) -> str | None:
        """Why an entry as read cannot be served, or None when it can.

        Exceptions of the manifest's parsing or of ``valid`` propagate to :meth:`load`,
        which treats them as an unreadable entry.
        """
        problem = _manifest_problem(arrays)
        if problem is not None:
            return problem
        missing = [name for name in required if name not in arrays]
        if missing:
            return f"it lacks the arrays {missing}"
        if valid is not None and not valid({k: v for k, v in arrays.items() if k != _MANIFEST}):
            return "its arrays do not have the shapes this result needs"
        return None

    def _reject(self, key: str, path: Path, problem: str) -> None:
        """Drop an unusable entry, count a miss and say so: the caller recomputes it."""
        self._drop(path)
        self._count("misses")
        self._warn(
            f"A damaged cache entry ({key[:12]}…) was removed and is computed again: {problem}."
        )

    def _drop(self, path: Path) -> None:
        """Remove a bad entry; a folder in an entry's place is removed when empty."""
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()

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
            True when stored; False when the file system refused the write (full disk,
            no inodes, read-only or unwritable folder, a folder in the entry's place):
            a :class:`CacheWarning` is issued and nothing partial is left.

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
        payload[_MANIFEST] = _manifest(payload)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:16]}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            self._count("write_failures")
            if exc.errno in _DISK_FULL:
                self._warn(
                    f"The cache at {self.root} is full (disk, quota or inodes): the result was "
                    "computed but not stored. Free some space or set SEMRSM_CACHE_DIR to "
                    "another disk."
                )
            else:
                self._warn(
                    f"The cache at {self.root} cannot store results ({_why(exc)}): the result "
                    "was computed but not stored. Fix the folder's permissions or set "
                    "SEMRSM_CACHE_DIR to a writable folder."
                )
            return False
        except BaseException:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
        self.evict(keep=key)
        return True

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Mapping[str, np.ndarray] | tuple[Mapping[str, np.ndarray], Mapping]],
        *,
        required: tuple[str, ...] | list[str] = (),
        valid: Callable[[dict[str, np.ndarray]], bool] | None = None,
    ) -> tuple[dict[str, np.ndarray], bool]:
        """Return entry ``key``, computing and storing it once when missing.

        Parameters
        ----------
        key : str
            From :func:`content_key`.
        compute : callable
            Called with no argument when the entry is missing; returns a mapping
            of arrays, or ``(arrays, meta)``.
        required, valid : as :meth:`load`; a stored entry failing them is recomputed.

        Returns
        -------
        arrays : dict of str to numpy.ndarray
            Includes the metadata array when ``meta`` was given (read it with
            :meth:`meta`).
        hit : bool
            True when served from the cache, False when ``compute`` ran here.
        """
        arrays = self.load(key, required, valid)
        if arrays is not None:
            return arrays, True
        with self.lock(key):
            # Another session may have stored it while we waited for the lock.
            arrays = self.load(key, required, valid)
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
        with self._counter_lock:
            local = self._key_locks.setdefault(key, threading.Lock())
        lock_path = self.locks_dir / f"{key}.lock"
        try:
            f = open(lock_path, "a+b")  # noqa: SIM115 - closed below
        except OSError as err:
            # No lock file (read-only cache, no inodes, 'locks' not a folder): sessions of
            # this process still compute once; other processes may compute it again.
            if not self._lock_warned:
                self._lock_warned = True
                self._warn(
                    f"The cache's lock folder {self.locks_dir} cannot be used ({_why(err)}); "
                    "results are still computed once per process."
                )
            with local:
                yield
            return
        with f, local:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ size
    def _entry_files(self, temporaries: bool = False) -> list[tuple[Path, float, int]]:
        out = []
        patterns = ["*/*.npz"] + (["*/.*.tmp"] if temporaries else [])
        for pattern in patterns:
            try:
                found = list(self.entries_dir.glob(pattern))
            except OSError:
                continue
            for p in found:
                try:
                    st = p.stat()
                except OSError:
                    continue  # removed by another session meanwhile
                if stat.S_ISREG(st.st_mode):
                    out.append((p, st.st_mtime, st.st_size))
        return out

    def size_bytes(self) -> int:
        """Total size of the stored entries and of temporaries in bytes (uploads not included)."""
        return sum(size for _, _, size in self._entry_files(temporaries=True))

    def remove_stale_temporaries(self, older_than: float = STALE_TMP_SECONDS) -> int:
        """Delete temporary files of writers that died (older than ``older_than`` seconds),
        in the entries and the uploads; returns how many were removed."""
        now = time.time()
        removed = 0
        for p, mtime, _ in self._entry_files(temporaries=True):
            if p.suffix == ".tmp" and now - mtime > older_than:
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed += 1
        return removed + self.uploads.remove_stale_temporaries(older_than)

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
        self.remove_stale_temporaries()
        files = self._entry_files(temporaries=True)
        total = sum(size for _, _, size in files)
        files = [f for f in files if f[0].suffix == ".npz"]  # live writers' temporaries stay
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

    # ------------------------------------------------------------------ misc
    def _count(self, name: str) -> None:
        with self._counter_lock:
            setattr(self, name, getattr(self, name) + 1)

    def _warn(self, message: str) -> None:
        """Issue a :class:`CacheWarning` and remember it for a user interface."""
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


def _describe(err: BaseException) -> str:
    """A short text of an error: the system's words for an OSError, else type and message."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return f"{type(err).__name__}: {_clip(str(err), 120)}"


def _why(err: OSError) -> str:
    return err.strerror or type(err).__name__


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
