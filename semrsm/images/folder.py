"""Images from a server-side folder (ImageFolder layout) or from uploaded files."""

from __future__ import annotations

import os
from pathlib import Path

from .base import ImageSet
from .decode import MAX_FILE_BYTES, ImageError, decode_image

__all__ = ["from_folder", "from_uploads", "MAX_FOLDER_FILES"]

#: Most files read from one folder; the rest are listed in ``skipped``.
MAX_FOLDER_FILES = 5000


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def from_folder(
    path: str, data_root: str | None = None, *, limit: int = MAX_FOLDER_FILES
) -> ImageSet:
    """Load every image of a folder; sub-folders give class labels.

    With sub-folders (``root/cat/1.png``, ``root/dog/2.jpg``) each image is labelled
    by its sub-folder name and files lying directly in ``path`` are skipped; without
    sub-folders all files of ``path`` are loaded without labels. Hidden files and
    folders (leading ``.``) are ignored. Files are tried regardless of their
    extension; whatever does not decode is skipped with its reason.

    Parameters
    ----------
    path : str
        The folder. Relative paths are taken relative to ``data_root`` when given.
    data_root : str or None, optional
        When given, ``path`` and every file read (after resolving symbolic links)
        must lie inside it; files that escape it are skipped.
    limit : int, optional
        Most images loaded; further files are listed in ``skipped``.

    Returns
    -------
    ImageSet
        Images in sorted order (by class, then file name), names relative to ``path``.

    Raises
    ------
    ImageError
        The folder does not exist, is not a directory, lies outside ``data_root``, or
        holds no usable image.
    """
    root = None
    folder = Path(os.path.expanduser(str(path)))
    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        if not folder.is_absolute():
            folder = root / folder
    folder = folder.resolve()
    if root is not None and not _inside(folder, root):
        raise ImageError(
            f"folder {path!r} lies outside the allowed data root {str(root)!r}; "
            "choose a folder inside it"
        )
    if not folder.exists():
        raise ImageError(f"folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ImageError(f"{str(folder)!r} is not a folder")

    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    class_dirs = [p for p in entries if p.is_dir()]
    skipped: list[tuple[str, str]] = []
    candidates: list[tuple[Path, str | None]] = []
    if class_dirs:
        for p in entries:
            if not p.is_dir():
                skipped.append((p.name, "not inside a class sub-folder"))
        for d in class_dirs:
            for f in sorted(d.rglob("*")):
                rel = f.relative_to(folder)
                if any(part.startswith(".") for part in rel.parts) or f.is_dir():
                    continue
                candidates.append((f, d.name))
    else:
        candidates = [(p, None) for p in entries]

    images, names, labels = [], [], []
    for f, label in candidates:
        rel = str(f.relative_to(folder))
        if len(images) >= limit:
            skipped.append((rel, f"over the limit of {limit} images per folder"))
            continue
        real = f.resolve()
        if root is not None and not _inside(real, root):
            skipped.append((rel, "link points outside the allowed data root"))
            continue
        try:
            if not real.is_file():
                skipped.append((rel, "not a regular file"))
                continue
            size = real.stat().st_size
            if size > MAX_FILE_BYTES:
                skipped.append((rel, f"file is {size / 2**20:.0f} MiB, above the limit"))
                continue
            images.append(decode_image(real.read_bytes(), rel))
        except ImageError as err:
            skipped.append((rel, _reason(err, rel)))
            continue
        except OSError as err:
            skipped.append((rel, f"cannot read: {err.strerror or err}"))
            continue
        names.append(rel)
        labels.append(label)
    if not images:
        detail = "; ".join(f"{n}: {r}" for n, r in skipped[:5])
        raise ImageError(f"no usable image in {str(folder)!r}" + (f" ({detail})" if detail else ""))
    n_classes = len({lab for lab in labels})
    desc = f"{len(images)} images from folder {folder.name!r}"
    if class_dirs:
        desc += f" ({n_classes} classes)"
    return ImageSet(
        images=images,
        names=names,
        labels=labels if class_dirs else None,
        skipped=skipped,
        description=desc,
        meta={"folder": str(folder)},
    )


def from_uploads(files: list[tuple[str, bytes]]) -> ImageSet:
    """Decode uploaded files; the ones that are not usable images are skipped.

    Parameters
    ----------
    files : list of (str, bytes)
        ``(file name, content)`` pairs, e.g. from a web upload widget.

    Returns
    -------
    ImageSet
        The decodable images in upload order, named by file name, labels None; an
        empty set (with every file in ``skipped``) when none decodes.
    """
    images, names, skipped = [], [], []
    for name, data in files:
        try:
            images.append(decode_image(bytes(data), name))
            names.append(name)
        except ImageError as err:
            skipped.append((name, _reason(err, name)))
    return ImageSet(
        images=images,
        names=names,
        labels=None,
        skipped=skipped,
        description=f"{len(images)} uploaded images",
    )


def _reason(err: Exception, name: str) -> str:
    """The error text without the leading ``name: `` that decode_image adds."""
    text = str(err)
    prefix = f"{name}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
