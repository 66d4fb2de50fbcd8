"""Images from a server-side folder (ImageFolder layout) or from uploaded files."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from .._reasons import path_error_reason
from .base import ImageSet
from .decode import MAX_FILE_BYTES, ImageError, decode_image

__all__ = [
    "from_folder",
    "from_uploads",
    "MAX_FOLDER_FILES",
    "MAX_WALK_DEPTH",
    "MAX_WALK_ENTRIES",
    "MAX_WALK_SECONDS",
    "DECODE_MAX_SIDE",
    "SET_MAX_PIXELS",
]

#: Most files read from one folder; the rest are listed in ``skipped``.
MAX_FOLDER_FILES = 5000
#: Deepest sub-folder level walked below a class folder.
MAX_WALK_DEPTH = 8
#: Most directory entries looked at in one walk (files and folders, skipped or not).
MAX_WALK_ENTRIES = 50_000
#: Longest a walk may take, in seconds (a slow network mount must not hang the app).
MAX_WALK_SECONDS = 10.0
#: Longest side an image of a folder or an upload is decoded to: far above the models'
#: input sizes (224–518) and the thumbnails, far below a camera's 8000 pixels.
DECODE_MAX_SIDE = 1024
#: Decoded pixels one folder or upload set may hold in all (3 bytes each: 600 MB).
#: Large sets are decoded smaller (never below :data:`MIN_SIDE`) to fit.
SET_MAX_PIXELS = 200_000_000
#: Smallest longest side a set is shrunk to in order to fit its pixel budget.
MIN_SIDE = 256
#: Longest path (in characters) accepted for a folder.
MAX_PATH_CHARS = 1024


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Walk:
    """A bounded walk of one folder tree that never leaves ``root`` through a link.

    Symbolic links (files or folders) are resolved and used only when their target lies
    inside ``root``; a link that leads out is reported under its own name (which lies
    inside the root) and never opened, so no outside name is ever listed. Folder loops are
    cut by remembering the real folders visited. Depth, entries and time are bounded; what
    the bounds leave out is reported once.
    """

    def __init__(self, root: Path | None, skipped: list[tuple[str, str]]):
        self.root = root
        self.skipped = skipped
        self.entries = 0
        self.deadline = time.monotonic() + MAX_WALK_SECONDS
        self.seen: set[Path] = set()
        self.stopped: str | None = None

    def _escapes(self, entry: os.DirEntry) -> bool:
        if self.root is None or not entry.is_symlink():
            return False
        try:
            return not _inside(Path(entry.path).resolve(), self.root)
        except (OSError, RuntimeError):  # broken or looping link
            return True

    def _budget_left(self) -> bool:
        if self.stopped is not None:
            return False
        self.entries += 1
        if self.entries > MAX_WALK_ENTRIES:
            self.stopped = f"stopped after {MAX_WALK_ENTRIES:,} entries; use a smaller folder"
        elif time.monotonic() > self.deadline:
            self.stopped = f"stopped after {MAX_WALK_SECONDS:g} s of listing; use a smaller folder"
        return self.stopped is None

    def scan(self, folder: Path, base: Path) -> tuple[list[Path], list[Path]]:
        """Visible entries of ``folder``: (sub-folders, files), sorted; links that leave the
        root are put in ``skipped`` (named relative to ``base``)."""
        dirs, files = [], []
        try:
            with os.scandir(folder) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as err:
            self.skipped.append((_short(str(folder.relative_to(base))), f"cannot list: {err.strerror}"))
            return dirs, files
        for entry in items:
            if entry.name.startswith("."):
                continue
            if not self._budget_left():
                break
            path = Path(entry.path)
            if self._escapes(entry):
                self.skipped.append((str(path.relative_to(base)), "link leads outside the data root"))
                continue
            try:
                is_dir = entry.is_dir()  # follows a link (known to stay inside the root)
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(path)
        return dirs, files

    def files_below(self, folder: Path, base: Path, depth: int = 0) -> list[Path]:
        """Every visible file below ``folder`` (depth first, sorted), within the bounds."""
        try:
            real = folder.resolve()
        except (OSError, RuntimeError):
            return []
        if real in self.seen:
            return []  # a link back to a folder already walked
        self.seen.add(real)
        dirs, files = self.scan(folder, base)
        out = list(files)
        for d in dirs:
            if self.stopped is not None:
                break
            if depth + 1 > MAX_WALK_DEPTH:
                self.skipped.append(
                    (str(d.relative_to(base)), f"deeper than {MAX_WALK_DEPTH} folder levels")
                )
                continue
            out.extend(self.files_below(d, base, depth + 1))
        return sorted(out)


def _resolve_folder(path: str, data_root: str | None) -> tuple[Path, Path | None]:
    shown = _short(str(path))
    if len(str(path)) > MAX_PATH_CHARS:
        raise ImageError(
            f"folder name {shown!r} is {len(str(path)):,} characters long (limit "
            f"{MAX_PATH_CHARS:,}); choose a folder with a shorter path"
        )
    root = None
    try:
        folder = Path(os.path.expanduser(str(path)))
        if data_root is not None:
            root = Path(data_root).expanduser().resolve()
            if not folder.is_absolute():
                folder = root / folder
        folder = folder.resolve()
        if root is not None and not _inside(folder, root):
            raise ImageError(
                f"folder {shown!r} lies outside the allowed data root; choose a folder inside it"
            )
        st = folder.stat()
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"folder {shown!r} does not exist") from None
    except (OSError, RuntimeError, ValueError) as err:
        raise ImageError(f"folder {shown!r} cannot be opened ({path_error_reason(err)})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{shown!r} is not a folder")
    return folder, root


def _side_for(n: int, max_side: int, max_pixels: int) -> int:
    """Longest side that lets ``n`` images fit ``max_pixels`` (square images, worst case)."""
    fit = int((max_pixels / max(n, 1)) ** 0.5)
    return max(min(max_side, MIN_SIDE), min(max_side, fit))


class _Budget:
    """Decoded pixels of one set against :data:`SET_MAX_PIXELS`."""

    def __init__(self, max_pixels: int):
        self.max_pixels = max_pixels
        self.used = 0

    def take(self, img) -> bool:
        px = img.size[0] * img.size[1]
        if self.used + px > self.max_pixels:
            return False
        self.used += px
        return True

    def reason(self) -> str:
        return (
            f"over the set's pixel budget ({self.max_pixels / 1e6:.0f} Mpx decoded in all); "
            "use fewer or smaller images"
        )

    def admit(self, img, name: str, skipped: list[tuple[str, str]]) -> bool:
        """Take ``img`` when it fits the budget; else list ``name`` in ``skipped`` with why."""
        if self.take(img):
            return True
        skipped.append((name, self.reason()))
        return False


def _decode(data: bytes, name: str, side: int, skipped: list[tuple[str, str]]):
    """``decode_image`` of ``data`` downscaled to ``side``, or None (``name`` listed in
    ``skipped`` with the reason) when it is not a usable image."""
    try:
        return decode_image(data, name, max_side=side)
    except ImageError as err:
        skipped.append((name, _reason(err, name)))
        return None


def from_folder(
    path: str,
    data_root: str | None = None,
    *,
    limit: int = MAX_FOLDER_FILES,
    max_side: int = DECODE_MAX_SIDE,
    max_pixels: int = SET_MAX_PIXELS,
) -> ImageSet:
    """Load every image of a folder; sub-folders give class labels.

    With sub-folders (``root/cat/1.png``, ``root/dog/2.jpg``) each image is labelled
    by its sub-folder name and files lying directly in ``path`` are skipped; without
    sub-folders all files of ``path`` are loaded without labels. Hidden files and
    folders (leading ``.``) are ignored. Files are tried regardless of their
    extension; whatever does not decode is skipped with its reason.

    The walk is bounded (:data:`MAX_WALK_DEPTH` levels, :data:`MAX_WALK_ENTRIES` entries,
    :data:`MAX_WALK_SECONDS`) and, with ``data_root``, never follows a link out of it:
    such a link is skipped under its own name and what lies behind it is never listed.
    Images are downscaled on decode (longest side ``max_side``, less for large sets so that
    the set fits ``max_pixels``).

    Parameters
    ----------
    path : str
        The folder. Relative paths are taken relative to ``data_root`` when given.
    data_root : str or None, optional
        When given, ``path`` and every file read (after resolving symbolic links)
        must lie inside it; links that escape it are skipped.
    limit : int, optional
        Most images loaded; further files are listed in ``skipped``.
    max_side : int, optional
        Longest side of a decoded image (aspect ratio kept).
    max_pixels : int, optional
        Decoded pixels of the whole set; files beyond it are skipped with the reason.

    Returns
    -------
    ImageSet
        Images in sorted order (by class, then file name), names relative to ``path``.

    Raises
    ------
    ImageError
        The folder does not exist, is not a directory, lies outside ``data_root``, has
        a path too long to open, or holds no usable image.
    """
    folder, root = _resolve_folder(path, data_root)
    skipped: list[tuple[str, str]] = []
    walk = _Walk(root, skipped)
    walk.seen.add(folder)
    class_dirs, loose = walk.scan(folder, folder)
    candidates: list[tuple[Path, str | None]] = []
    if class_dirs:
        for p in loose:
            skipped.append((p.name, "not inside a class sub-folder"))
        for d in class_dirs:
            candidates.extend((f, d.name) for f in walk.files_below(d, folder, 1))
    else:
        candidates = [(p, None) for p in loose]
    if walk.stopped is not None:
        skipped.append((".", f"listing {walk.stopped}"))

    side = _side_for(min(len(candidates), limit), max_side, max_pixels)
    budget = _Budget(max_pixels)
    images, names, labels = [], [], []
    for f, label in candidates:
        rel = str(f.relative_to(folder))
        if len(images) >= limit:
            skipped.append((rel, f"over the limit of {limit} images per folder"))
            continue
        try:
            real = f.resolve()
            if root is not None and not _inside(real, root):
                skipped.append((rel, "link leads outside the data root"))
                continue
            if not real.is_file():
                skipped.append((rel, "not a regular file"))
                continue
            size = real.stat().st_size
            if size > MAX_FILE_BYTES:
                skipped.append((rel, f"file is {size / 2**20:.0f} MiB, above the limit"))
                continue
            img = _decode(real.read_bytes(), rel, side, skipped)
        except (OSError, RuntimeError) as err:
            skipped.append((rel, f"cannot read: {getattr(err, 'strerror', None) or err}"))
            continue
        if img is None or not budget.admit(img, rel, skipped):
            continue
        images.append(img)
        names.append(rel)
        labels.append(label)
    if not images:
        detail = "; ".join(f"{n}: {r}" for n, r in skipped[:5])
        raise ImageError(
            f"no usable image in {_short(folder.name)!r}" + (f" ({detail})" if detail else "")
        )
    n_classes = len({lab for lab in labels})
    desc = f"{len(images)} images from folder {_short(folder.name)!r}"
    if class_dirs:
        desc += f" ({n_classes} classes)"
    return ImageSet(
        images=images,
        names=names,
        labels=labels if class_dirs else None,
        skipped=skipped,
        description=desc,
        meta={"folder": str(folder), "max_side": side, "pixels": budget.used},
    )


def from_uploads(
    files: list[tuple[str, bytes]],
    *,
    max_side: int = DECODE_MAX_SIDE,
    max_pixels: int = SET_MAX_PIXELS,
) -> ImageSet:
    """Decode uploaded files; the ones that are not usable images are skipped.

    Images are downscaled on decode (one at a time, so memory holds at most one full-size
    image), as :func:`from_folder` does.

    Parameters
    ----------
    files : list of (str, bytes)
        ``(file name, content)`` pairs, e.g. from a web upload widget.
    max_side, max_pixels : as :func:`from_folder`.

    Returns
    -------
    ImageSet
        The decodable images in upload order, named by file name, labels None; an
        empty set (with every file in ``skipped``) when none decodes.
    """
    images, names, skipped = [], [], []
    side = _side_for(len(files), max_side, max_pixels)
    budget = _Budget(max_pixels)
    for name, data in files:
        img = _decode(bytes(data), name, side, skipped)
        if img is not None and budget.admit(img, name, skipped):
            images.append(img)
            names.append(name)
    return ImageSet(
        images=images,
        names=names,
        labels=None,
        skipped=skipped,
        description=f"{len(images)} uploaded images",
        meta={"max_side": side, "pixels": budget.used},
    )


def _reason(err: Exception, name: str) -> str:
    """The error text without the leading ``name: `` that decode_image adds."""
    text = str(err)
    prefix = f"{name}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
