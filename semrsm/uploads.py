"""Uploaded files, stored by content inside the cache folder and nowhere else.

An upload is kept as ``<cache>/uploads/<digest><ext>``, where the digest is
:func:`upload_digest` of its bytes (identical content is stored once) and ``<ext>`` a short
alphanumeric extension of the user's name, or none (some readers, such as checkpoint
loaders, go by the extension). The user's file name, reduced to its base name, is kept in
``uploads/names/<digest>`` so messages can say it (:func:`upload_name`). Guarantees:

* **no path from the user**: only the digest and a checked extension form a file name;
* **regular files only, no link followed**: uploads and names are read with
  :func:`semrsm.cache._open_regular`;
* **atomic**: an upload is written to a temporary file (``.up.*.tmp``, removed with the
  cache's other stale temporaries) and renamed into place;
* **a full or read-only folder is a warning**: the upload is then held in memory for the
  process, and still works until the server restarts.

Each :class:`semrsm.cache.Cache` holds one store, :attr:`semrsm.cache.Cache.uploads`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from semrsm.cache import _clip, _open_regular, _why, content_key

__all__ = ["UploadStore", "upload_digest", "upload_name"]

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
#: prefix of an upload's temporary file (before its rename into place)
TMP_PREFIX = ".up."


def upload_digest(data: bytes) -> str:
    """The id of an uploaded file: a SHA-256 of its bytes and of
    :data:`semrsm.cache.CACHE_FORMAT`.

    Returns
    -------
    str
        64 lowercase hex digits; identical content (in one cache format) has one id.
    """
    return content_key("upload", bytes(data))


class UploadStore:
    """The uploads of one cache: stored by digest, their names remembered.

    Parameters
    ----------
    folder : Path
        The cache's ``uploads`` folder (made by the cache).
    warn : callable
        ``warn(message)`` for a file-system fault (the cache's :class:`CacheWarning`).
    where : str
        The cache's folder, as messages name it.
    """

    def __init__(self, folder: Path, warn: Callable[[str], None], where: str):
        self.folder = folder
        self._warn = warn
        self._where = where
        self._lock = threading.Lock()
        self._memory: dict[str, tuple[str, bytes]] = {}
        self._names: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"UploadStore({str(self.folder)!r})"

    def store(self, name: str, data: bytes) -> str:
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
            Its :func:`upload_digest` (a SHA-256 of ``data`` and the cache format); read
            the file back with :meth:`read` or locate it with :meth:`path`.
            Identical content is stored once.
        """
        digest = upload_digest(data)
        self._remember_name(digest, name)
        if self._find(digest) is not None:
            return digest
        ext = Path(str(name).replace("\\", "/")).suffix.lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,12}", ext):
            ext = ""
        path = self.folder / f"{digest}{ext}"
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=TMP_PREFIX, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            # kept in memory for this process instead (the upload still works until restart)
            with self._lock:
                self._memory[digest] = (ext, bytes(data))
            self._warn(
                f"The cache at {self._where} cannot keep the upload {_clip(Path(str(name)).name)!r} "
                f"({_why(exc)}); it is held in memory until the server restarts. Free some "
                "space or set SEMRSM_CACHE_DIR to a writable folder."
            )
        return digest

    def _remember_name(self, digest: str, name: str) -> None:
        """Keep the user's file name next to the upload, so messages can say it."""
        base = _clip(Path(str(name).replace("\\", "/")).name, 200)
        with self._lock:
            self._names[digest] = base
        with contextlib.suppress(OSError):
            names = self.folder / "names"
            names.mkdir(exist_ok=True)
            (names / digest).write_text(base, encoding="utf-8")

    def name(self, digest_or_path: str | os.PathLike) -> str | None:
        """The name a stored upload was given by its user (None when unknown)."""
        return upload_name(digest_or_path, self)

    def _find(self, digest: str) -> Path | None:
        if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
            raise ValueError(f"upload ids are SHA-256 hex digests, got {digest!r}")
        try:
            found = list(self.folder.glob(f"{digest}*"))
        except OSError:
            return None
        for p in found:
            if p.is_file() and (p.name == digest or p.name[64] == "."):
                return p
        return None

    def path(self, digest: str) -> Path:
        """The file of an upload stored with :meth:`store` (inside the cache folder; an
        upload held in memory is written to a temporary file).

        Raises
        ------
        ValueError
            If ``digest`` is not a SHA-256 hex digest.
        FileNotFoundError
            If no such upload is stored (upload the file again).
        """
        path = self._find(digest)
        if path is None and digest in self._memory:
            ext, data = self._memory[digest]
            fd, tmp = tempfile.mkstemp(prefix=f"semrsm-upload-{digest[:12]}-", suffix=ext)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return Path(tmp)
        if path is None:
            raise FileNotFoundError(
                f"no upload {digest[:12]}... in {self.folder}; upload it again"
            )
        with contextlib.suppress(OSError):
            os.utime(path)
        return path

    def read(self, digest: str) -> bytes:
        """Return the content of an upload stored with :meth:`store`.

        Raises
        ------
        ValueError, FileNotFoundError
            As :meth:`path`.
        """
        if self._find(digest) is None and digest in self._memory:
            return self._memory[digest][1]
        with _open_regular(self.path(digest)) as f:
            return f.read()

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Delete temporary files of writers that died (older than ``older_than`` seconds);
        returns how many were removed."""
        now = time.time()
        removed = 0
        with contextlib.suppress(OSError):
            for p in self.folder.glob(f"{TMP_PREFIX}*.tmp"):
                with contextlib.suppress(OSError):
                    if now - p.stat().st_mtime > older_than:
                        p.unlink()
                        removed += 1
        return removed


def upload_name(path: str | os.PathLike, store: UploadStore | None = None) -> str | None:
    """The user's name of a file stored by :meth:`UploadStore.store`, from its path (or
    digest); None for any other file.

    Parameters
    ----------
    path : a path inside a cache's ``uploads`` folder, or the upload's SHA-256 digest.
    store : the cache's upload store, when known (also finds uploads held in memory).
    """
    p = Path(path)
    digest = p.name[:64]
    if not _DIGEST_RE.fullmatch(digest):
        return None
    if store is not None and digest in store._names:
        return store._names[digest]
    folders = [p.parent / "names"] + ([store.folder / "names"] if store is not None else [])
    for folder in folders:
        with contextlib.suppress(OSError, UnicodeDecodeError), _open_regular(folder / digest) as f:
            return f.read(1024).decode("utf-8").strip() or None
    return None
