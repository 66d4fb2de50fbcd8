"""The ``photos`` set: photographs bundled inside scikit-image (never downloaded).

Files are read straight from the package's data folder; ``skimage.data`` functions
are not called because some of them fetch from the network.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .base import ImageSet
from .decode import ImageError, decode_image

__all__ = ["PHOTO_FILES", "photos", "load_photo"]

#: Photo name -> file in scikit-image's data folder (all shipped with the wheel).
PHOTO_FILES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "camera": "camera.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "retina": "retina.jpg",
    "moon": "moon.png",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "page": "page.png",
    "text": "text.png",
}


def _data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).resolve().parent / "data"


def load_photo(name: str) -> Image.Image:
    """Load one bundled photograph as RGB.

    Parameters
    ----------
    name : str
        A key of :data:`PHOTO_FILES`, e.g. ``"astronaut"``.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``.

    Raises
    ------
    ImageError
        Unknown name, or the file is missing from the scikit-image installation.
    """
    if name not in PHOTO_FILES:
        raise ImageError(f"unknown photo {name!r}; choose one of: {', '.join(PHOTO_FILES)}")
    path = _data_dir() / PHOTO_FILES[name]
    if not path.is_file():
        raise ImageError(
            f"photo {name!r} is missing from scikit-image ({path}); reinstall scikit-image"
        )
    return decode_image(path.read_bytes(), name)


def photos() -> ImageSet:
    """All photographs of :data:`PHOTO_FILES` that the installed scikit-image ships.

    Returns
    -------
    ImageSet
        RGB images of different sizes named after the photo, labels None;
        photos missing from the installation are listed in ``skipped``.
    """
    images, names, skipped = [], [], []
    for name in PHOTO_FILES:
        try:
            images.append(load_photo(name))
            names.append(name)
        except ImageError as err:
            skipped.append((name, str(err)))
    # the same keywords as from_uploads' ImageSet in folder.py: one constructor, other values
    return ImageSet(
        images=images,
        names=names,
        labels=None,
        skipped=skipped,
        description=f"{len(images)} photographs bundled with scikit-image",
    )
