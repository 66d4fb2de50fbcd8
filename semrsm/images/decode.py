"""Robust decoding of untrusted image bytes into RGB PIL images.

Every failure becomes an :class:`ImageError` with a reason a person can act on,
so loaders can skip a bad file and report why instead of crashing.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageError", "decode_image", "MAX_PIXELS", "MAX_FILE_BYTES"]

#: Largest accepted image (width * height). Far above any photo a user explores,
#: far below what would exhaust memory when a tiny file claims huge dimensions.
MAX_PIXELS = 64_000_000
#: Largest accepted encoded file.
MAX_FILE_BYTES = 200 * 1024 * 1024


class ImageError(ValueError):
    """An input could not be used as an image; ``str(err)`` says why."""


def decode_image(
    data: bytes, name: str = "", *, max_pixels: int = MAX_PIXELS, max_side: int | None = None
) -> Image.Image:
    """Decode encoded image bytes into an RGB image.

    Applies the EXIF orientation, takes the first frame of animations and
    multi-page files, and converts every mode to 8-bit RGB: grayscale, palette,
    CMYK and YCbCr by PIL's conversion, images with transparency composited on
    white, 16-bit and 32-bit integer images scaled from their value range, float
    images min-max scaled.

    Parameters
    ----------
    data : bytes
        The encoded file (PNG, JPEG, GIF, TIFF, BMP, WebP, ... whatever Pillow reads).
    name : str, optional
        File name, only used in error messages.
    max_pixels : int, optional
        Largest accepted ``width * height``; larger images are refused as possible
        decompression bombs before their pixels are decoded.
    max_side : int, optional
        Downscale on decode so that the longest side is at most this (aspect ratio kept);
        JPEGs are decoded at a reduced scale directly (``draft``), so a large photo never
        exists in memory at full size. None keeps the full resolution.

    Returns
    -------
    PIL.Image.Image
        A fully loaded image of mode ``"RGB"``.

    Raises
    ------
    ImageError
        Empty, not an image, truncated or corrupt, or larger than ``max_pixels``.
    """
    label = f"{name}: " if name else ""
    if not data:
        raise ImageError(f"{label}empty file")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(
            f"{label}file is {len(data) / 2**20:.0f} MiB, above the limit of "
            f"{MAX_FILE_BYTES / 2**20:.0f} MiB"
        )
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_size(img, max_pixels, label)
            img.seek(0)
            if max_side is not None and img.format == "JPEG" and max(img.size) > max_side:
                # DCT scaling: decodes at 1/2, 1/4 or 1/8 size, at least max_side
                img.draft("RGB", (max_side, max_side))
            img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        fmt = _sniff(data)
        if fmt:  # the signature says image, the content does not decode
            raise ImageError(f"{label}truncated or corrupt {fmt} data") from None
        raise ImageError(f"{label}not an image (format not recognised)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(
            f"{label}too large, refused as a possible decompression bomb ({err})"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as err:
        raise ImageError(f"{label}truncated or corrupt image data ({err})") from None
    except MemoryError:
        raise ImageError(f"{label}not enough memory to decode this image") from None
    except Exception as err:  # noqa: BLE001 - decoders of untrusted data raise anything
        raise ImageError(f"{label}could not decode ({type(err).__name__}: {err})") from None
    try:
        # in place: no second full-size copy when there is nothing to rotate
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # noqa: BLE001 - a broken EXIF block should not lose the image
        pass
    if max_side is not None and max(img.size) > 2 * max_side:
        # integer box reduction first: cheap, and frees the full-size pixels early
        with contextlib.suppress(ValueError):  # modes reduce() does not support (e.g. P)
            img = img.reduce(max(img.size) // max_side)
    try:
        img = to_rgb(img)
    except Exception as err:  # noqa: BLE001
        raise ImageError(f"{label}unsupported pixel format {img.mode!r} ({err})") from None
    if max_side is not None and max(img.size) > max_side:
        if max_side < 1:
            raise ValueError(f"max_side must be a positive integer, got {max_side}")
        img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return img


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _sniff(data: bytes) -> str | None:
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def _check_size(img: Image.Image, max_pixels: int, label: str) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{label}image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageError(
            f"{label}too large: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
            "(refused as a possible decompression bomb); downscale the image first"
        )


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert a loaded PIL image of any mode to 8-bit RGB.

    Parameters
    ----------
    img : PIL.Image.Image
        Any mode Pillow produces.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``; transparency is composited on white.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I", "F") or mode.startswith("I;"):
        return Image.fromarray(_scale_to_uint8(np.asarray(img), mode)).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(arr.shape, dtype=np.uint8)
    arr = np.where(finite, arr, 0.0)
    lo, hi = float(arr.min()), float(arr.max())
    if mode == "F":
        # Float images have no fixed range: [0, 1] data is kept as is, anything else min-max.
        if lo >= 0.0 and hi <= 1.0:
            scaled = arr * 255.0
        else:
            scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    elif lo >= 0 and hi <= 255 and not mode.startswith("I;16"):
        scaled = arr
    elif lo >= 0 and hi <= 65535:
        scaled = arr / 257.0  # 16-bit full range -> 8-bit
    else:
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
