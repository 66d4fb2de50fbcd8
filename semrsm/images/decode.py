"""Robust decoding of untrusted image bytes into RGB PIL images.

Every failure becomes an :class:`ImageError` with a reason a person can act on,
so loaders can skip a bad file and report why instead of crashing.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageError", "decode_image", "MAX_PIXELS", "MAX_FILE_BYTES", "MAX_DECODE_BYTES"]

#: Largest accepted image (width * height). Far above any photo a user explores,
#: far below what would exhaust memory when a tiny file claims huge dimensions.
MAX_PIXELS = 64_000_000
#: Largest accepted encoded file.
MAX_FILE_BYTES = 200 * 1024 * 1024
#: Most memory decoding one image may take: Pillow's pixel buffer (1 byte a pixel for
#: ``L``/``P``/``1``, 2 for 16-bit gray, 4 for every other mode, RGB included) plus the
#: buffer libtiff fills with one strip or tile of a compressed TIFF. Checked from the
#: header, before a pixel is decoded; a 64-Mpx RGB image (256 MB) fits.
MAX_DECODE_BYTES = 300_000_000


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

    Memory: Pillow's decoded buffer (at most 4 bytes a pixel, so ``4 * max_pixels``
    bytes; 16-bit PNG/TIFF 2 bytes a pixel) plus the result. 16-bit and 32-bit
    single-channel images (modes ``I;16*``, ``I``, ``F``) are reduced and scaled in
    strips of about :data:`STRIP_PIXELS` pixels, never as one float copy of the image
    (a 7999 x 7999 16-bit PNG with ``max_side=1024``: +0.13 GB, not +2.1 GB). 16-bit
    RGB(A) and gray+alpha files are decoded by Pillow straight to 8-bit modes.

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
        Empty, not an image, truncated or corrupt, larger than ``max_pixels``, or
        needing more than :data:`MAX_DECODE_BYTES` to decode (for example a compressed
        TIFF stored as one strip of 16-bit RGB).
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
            _check_decode_bytes(img, label)
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
    factor = 1
    if max_side is not None and max(img.size) > 2 * max_side:
        factor = max(img.size) // max_side
    try:
        if _is_deep(img.mode):
            # 16/32-bit values: reduced and scaled strip by strip, never as a whole float copy
            img = _deep_to_rgb(img, factor)
        else:
            if factor > 1:
                # integer box reduction first: cheap, and frees the full-size pixels early
                with contextlib.suppress(ValueError):  # modes reduce() does not support (e.g. P)
                    img = img.reduce(factor)
            img = to_rgb(img)
    except MemoryError:
        raise ImageError(f"{label}not enough memory to decode this image") from None
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


def _pixel_bytes(mode: str) -> int:
    """Bytes a pixel of ``mode`` takes in Pillow's memory (not in the file)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _tiff_strip_bytes(img: Image.Image) -> int:
    """Bytes libtiff holds for the largest strip or tile of a compressed TIFF; 0 for
    other files (uncompressed TIFFs and other formats stream into the pixel buffer)."""
    if img.format != "TIFF" or not img.tile or img.tile[0][0] != "libtiff":
        return 0
    tags = img.tag_v2
    w, h = img.size
    bits = tags.get(258, 8)
    bits = max(bits) if isinstance(bits, tuple) else int(bits)
    samples = int(tags.get(277, 1))
    if 322 in tags and 323 in tags:
        tw, th = int(tags[322]), int(tags[323])
    else:
        tw, th = w, min(h, int(tags.get(278, h)))
    return -(-tw * samples * bits // 8) * th


def _check_decode_bytes(img: Image.Image, label: str) -> None:
    w, h = img.size
    pixels = w * h * _pixel_bytes(img.mode)
    strip = _tiff_strip_bytes(img)
    if pixels + strip > MAX_DECODE_BYTES:
        parts = f"{pixels / 1e6:,.0f} MB of {img.mode} pixels"
        if strip:
            parts += f" + {strip / 1e6:,.0f} MB for one TIFF strip or tile"
        advice = (
            "save it in strips of fewer rows (Pillow and libtiff write strips of 8-64 KB) or as PNG"
            if strip
            else "downscale the image first"
        )
        raise ImageError(
            f"{label}decoding {w}x{h} would take {(pixels + strip) / 1e6:,.0f} MB ({parts}), "
            f"above the limit of {MAX_DECODE_BYTES / 1e6:,.0f} MB per image; {advice}"
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
    if _is_deep(mode):
        return _deep_to_rgb(img, 1)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


#: Pixels per strip when 16/32-bit images are scaled: about 4 MB of float32 at a time.
STRIP_PIXELS = 1 << 20


def _is_deep(mode: str) -> bool:
    """Whether a PIL mode holds more than 8 bits per value (``I;16*``, ``I``, ``F``)."""
    return mode in ("I", "F") or mode.startswith("I;")


def _float_strips(img: Image.Image, factor: int) -> Iterator[np.ndarray]:
    """The image as float32 rows, reduced by ``factor``, one horizontal strip at a time.

    Parameters
    ----------
    img : PIL.Image.Image
        A loaded single-channel image of a deep mode (``I;16*``, ``I``, ``F``).
    factor : int
        Box reduction factor (1 keeps the size). Strips are a multiple of ``factor`` rows
        high, so the strips together equal ``img.reduce(factor)``.

    Yields
    ------
    numpy.ndarray
        float32 of shape ``(rows, ceil(width / factor))``; at most about
        :data:`STRIP_PIXELS` source pixels each.
    """
    w, h = img.size
    rows = max(1, STRIP_PIXELS // (w * factor)) * factor
    for y0 in range(0, h, rows):
        strip = img.crop((0, y0, w, min(h, y0 + rows)))
        strip = strip if strip.mode == "F" else strip.convert("F")
        if factor > 1:
            strip = strip.reduce(factor)
        yield np.asarray(strip, dtype=np.float32)


def _value_range(img: Image.Image, factor: int) -> tuple[float, float] | None:
    """(lo, hi) of the finite values of the reduced image, 0 included when a value is not
    finite (those become 0); None when no value is finite."""
    lo, hi, any_bad = np.inf, -np.inf, False
    for arr in _float_strips(img, factor):
        finite = np.isfinite(arr)
        if finite.any():
            lo = min(lo, float(arr[finite].min()))
            hi = max(hi, float(arr[finite].max()))
        any_bad = any_bad or not finite.all()
    if lo > hi:
        return None
    return (min(lo, 0.0), max(hi, 0.0)) if any_bad else (lo, hi)


def _linear_map(lo: float, hi: float, mode: str) -> tuple[float, float]:
    """(offset, scale) such that ``(value - offset) * scale`` is the 8-bit value."""
    if mode == "F":
        # Float images have no fixed range: [0, 1] data is kept as is, anything else min-max.
        if lo >= 0.0 and hi <= 1.0:
            return 0.0, 255.0
    elif lo >= 0 and hi <= 255 and not mode.startswith("I;16"):
        return 0.0, 1.0
    elif lo >= 0 and hi <= 65535:
        return 0.0, 1.0 / 257.0  # 16-bit full range -> 8-bit
    return (lo, 255.0 / (hi - lo)) if hi > lo else (0.0, 0.0)


def _deep_to_rgb(img: Image.Image, factor: int) -> Image.Image:
    """Reduce a 16/32-bit single-channel image by ``factor`` and scale it to 8-bit RGB.

    Works strip by strip (two passes: value range, then scaling), so memory beyond the
    decoded image is the 8-bit result plus one strip, whatever the image's size.

    Parameters
    ----------
    img : PIL.Image.Image
        Loaded, mode ``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, ``I`` or ``F``.
    factor : int
        Box reduction factor, >= 1.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"`` of size ``ceil(width / factor) x ceil(height / factor)``: values
        within 0..255 (not ``I;16``) kept, 16-bit ranges divided by 257, ``F`` data in
        [0, 1] times 255, anything else min-max scaled; non-finite values become 0.
    """
    span = _value_range(img, factor)
    out_w, out_h = -(-img.size[0] // factor), -(-img.size[1] // factor)
    out = np.zeros((out_h, out_w), dtype=np.uint8)
    if span is not None:
        offset, scale = _linear_map(*span, img.mode)
        y = 0
        for arr in _float_strips(img, factor):
            arr = np.where(np.isfinite(arr), arr, np.float32(0.0))
            arr -= np.float32(offset)
            arr *= np.float32(scale)
            out[y : y + arr.shape[0]] = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
            y += arr.shape[0]
    return Image.fromarray(out).convert("RGB")
