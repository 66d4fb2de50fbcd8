"""The ``crops`` set: overlapping translated crops, the paper's translation experiment."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .base import ImageSet
from .decode import to_rgb
from .photos import load_photo

__all__ = ["make_crops", "grid_offsets"]


def grid_offsets(height: int, width: int, crop: int, n: int) -> list[tuple[int, int]]:
    """Top-left corners of ``n`` crops of side ``crop`` on an evenly spaced grid.

    The grid has ``rows = floor(sqrt(n))`` rows and ``ceil(n / rows)`` columns spanning
    the whole image; the first ``n`` positions in row-major order are returned.

    Returns
    -------
    list of (int, int)
        ``(dy, dx)`` offsets in pixels.
    """
    rows = max(1, math.isqrt(n))
    cols = math.ceil(n / rows)
    ys = (
        np.linspace(0, height - crop, rows).round().astype(int)
        if rows > 1
        else [(height - crop) // 2]
    )
    xs = (
        np.linspace(0, width - crop, cols).round().astype(int)
        if cols > 1
        else [(width - crop) // 2]
    )
    return [(int(y), int(x)) for y in ys for x in xs][:n]


def make_crops(
    sources: list[str] | list[Image.Image],
    n_per_source: int = 9,
    crop_frac: float = 0.75,
    output_size: int | None = None,
) -> ImageSet:
    """Overlapping square crops of each source, translated on a grid.

    Crops of one source share most of their content but at shifted positions,
    which is exactly what the semantic RSM is invariant to.

    Parameters
    ----------
    sources : list of str or list of PIL.Image.Image
        Photo names (see :data:`semrsm.images.photos.PHOTO_FILES`) or images.
    n_per_source : int, optional
        Crops per source, 1 to 400.
    crop_frac : float, optional
        Crop side as a fraction of the source's shorter side, in (0, 1].
    output_size : int or None, optional
        Resize every crop to this square size; None keeps the crop size.

    Returns
    -------
    ImageSet
        ``len(sources) * n_per_source`` RGB crops, labelled by source name;
        ``meta`` holds ``offsets`` (dy, dx) per crop, ``sources`` (source index per
        crop), ``source_names``, ``source_sizes`` (w, h) and ``crop_size``
        (side in source pixels).

    Raises
    ------
    ValueError
        No sources, unknown photo name (``ImageError``), or arguments out of range.
    """
    if not sources:
        raise ValueError("make_crops needs at least one source image or photo name")
    if (
        isinstance(n_per_source, bool)
        or not isinstance(n_per_source, (int, np.integer))
        or not 1 <= n_per_source <= 400
    ):
        raise ValueError(f"n_per_source must be an integer from 1 to 400, got {n_per_source!r}")
    if not 0.0 < float(crop_frac) <= 1.0:
        raise ValueError(f"crop_frac must be in (0, 1], got {crop_frac}")
    if output_size is not None and not 8 <= int(output_size) <= 2048:
        raise ValueError(f"output_size must be between 8 and 2048, got {output_size}")
    images, names, labels, offsets, src_index, src_names, src_sizes = [], [], [], [], [], [], []
    crop_sides = []
    for k, source in enumerate(sources):
        if isinstance(source, str):
            name, img = source, load_photo(source)
        elif isinstance(source, Image.Image):
            name, img = f"image{k}", to_rgb(source)
        else:
            raise ValueError(
                f"sources must be photo names or PIL images, got {type(source).__name__}"
            )
        w, h = img.size
        side = max(1, int(round(crop_frac * min(w, h))))
        src_names.append(name)
        src_sizes.append((w, h))
        crop_sides.append(side)
        for dy, dx in grid_offsets(h, w, side, int(n_per_source)):
            crop = img.crop((dx, dy, dx + side, dy + side))
            if output_size is not None:
                crop = crop.resize((int(output_size), int(output_size)), Image.BICUBIC)
            images.append(crop)
            names.append(f"{name}_dy{dy}_dx{dx}")
            labels.append(name)
            offsets.append((dy, dx))
            src_index.append(k)
    return ImageSet(
        images=images,
        names=names,
        labels=labels,
        description=(
            f"{n_per_source} translated crops ({crop_frac:.0%} of the shorter side) of "
            f"{', '.join(src_names)}"
        ),
        meta={
            "offsets": offsets,
            "sources": src_index,
            "source_names": src_names,
            "source_sizes": src_sizes,
            "crop_size": crop_sides[0] if len(set(crop_sides)) == 1 else crop_sides,
            "crop_sizes": crop_sides,
        },
    )
