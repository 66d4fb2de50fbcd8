"""Parse image-set spec strings such as ``"shapes:64"`` or ``"crops:astronaut"``."""

from __future__ import annotations

from .base import ImageSet
from .crops import make_crops
from .decode import ImageError
from .folder import from_folder
from .photos import PHOTO_FILES, photos
from .shapes import make_shapes

__all__ = ["MAX_SPEC_IMAGES", "load_image_set", "SPEC_HELP"]

#: most images a built-in spec may ask for (``shapes:N``, ``crops:...:N`` over all photos):
#: generating them takes memory and time before any check of the RSMs can run, and beyond
#: this the RSMs no longer fit the default memory budget anyway (semrsm.memory)
MAX_SPEC_IMAGES = 10_000

SPEC_HELP = (
    "image-set specs: 'shapes:N' (N procedural images), 'shapes:N:K' (K objects per image), "
    "'photos' (scikit-image photographs), 'crops:NAME[,NAME...][:N]' (N translated crops per "
    f"photo; photos: {', '.join(PHOTO_FILES)}), or a folder path"
)


def _int(text: str, what: str, spec: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ImageError(
            f"{what} in {spec!r} must be an integer, got {text!r}; {SPEC_HELP}"
        ) from None


def _check_count(count: int, spec: str) -> None:
    """Refuse a built-in set of more than :data:`MAX_SPEC_IMAGES` images before making any."""
    if count > MAX_SPEC_IMAGES:
        raise ImageError(
            f"{spec[:60]!r} asks for {count:,} images; built-in sets have at most "
            f"{MAX_SPEC_IMAGES:,} (the RSMs of more would not fit in memory); ask for fewer, "
            "e.g. 'shapes:256'"
        )


def load_image_set(spec: str, *, seed: int = 0, data_root: str | None = None) -> ImageSet:
    """Build an image set from a short spec string.

    Parameters
    ----------
    spec : str
        ``"shapes"`` (64 images) / ``"shapes:N"`` / ``"shapes:N:K"`` (K objects per image),
        ``"photos"``, ``"crops:astronaut"`` / ``"crops:astronaut,coffee"`` /
        ``"crops:astronaut:16"`` (16 crops per photo, default 9), or a folder path
        (ImageFolder layout, see :func:`from_folder`).
    seed : int, optional
        Seed of the procedural ``shapes`` set.
    data_root : str or None, optional
        Folders must lie inside it; relative folder paths are taken relative to it.

    Returns
    -------
    ImageSet

    Raises
    ------
    ImageError
        A malformed spec, unknown photo name, unusable folder, or more than
        :data:`MAX_SPEC_IMAGES` images; the message lists the accepted forms.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ImageError(f"empty image-set spec; {SPEC_HELP}")
    spec = spec.strip()
    head, _, rest = spec.partition(":")
    if head == "shapes":
        parts = rest.split(":") if rest else []
        if len(parts) > 2:
            raise ImageError(f"too many fields in {spec!r}; {SPEC_HELP}")
        n = _int(parts[0], "the number of images", spec) if parts else 64
        k = _int(parts[1], "the number of objects per image", spec) if len(parts) > 1 else 1
        _check_count(n, spec)
        try:
            return make_shapes(n, seed=seed, objects_per_image=k)
        except ImageError:
            raise
        except ValueError as err:
            raise ImageError(f"{spec!r}: {err}") from None
    if head == "photos":
        if rest:
            raise ImageError(f"'photos' takes no arguments, got {spec!r}; {SPEC_HELP}")
        return photos()
    if head == "crops":
        names_part, _, count = rest.partition(":")
        names = [n.strip() for n in names_part.split(",") if n.strip()]
        if not names:
            raise ImageError(f"{spec!r} names no photo; {SPEC_HELP}")
        unknown = [n for n in names if n not in PHOTO_FILES]
        if unknown:
            raise ImageError(
                f"unknown photo(s) {', '.join(unknown)} in {spec!r}; choose from "
                f"{', '.join(PHOTO_FILES)}"
            )
        n = _int(count, "the number of crops per photo", spec) if count else 9
        _check_count(len(names) * n, spec)
        try:
            return make_crops(names, n_per_source=n)
        except ImageError:
            raise
        except ValueError as err:
            raise ImageError(f"{spec!r}: {err}") from None
    try:
        return from_folder(spec, data_root=data_root)
    except ImageError as err:
        if ":" not in spec and "/" not in spec and "\\" not in spec:
            raise ImageError(f"{err}; {SPEC_HELP}") from None
        raise
