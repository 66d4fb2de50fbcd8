"""The procedural ``shapes`` set: labelled objects on textured backgrounds.

Image ``i`` of seed ``s`` depends only on ``(s, i)``, so ``make_shapes(64)`` is a
prefix of ``make_shapes(128)`` and any set can be regenerated exactly.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .base import ImageSet

__all__ = ["SHAPE_CLASSES", "make_shapes"]

SHAPE_CLASSES: tuple[str, ...] = (
    "disc",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "hexagon",
    "crescent",
)

_SUPERSAMPLE = 4  # masks are drawn this much larger and box-filtered: anti-aliased edges


def make_shapes(
    n: int, seed: int = 0, image_size: int = 96, objects_per_image: int = 1
) -> ImageSet:
    """Generate ``n`` images of geometric objects with class labels.

    Each image has a random background (noise, gradient, stripes, checker or
    smooth blobs) and ``objects_per_image`` objects of the classes in
    :data:`SHAPE_CLASSES` at random positions, sizes, rotations and colours.

    Parameters
    ----------
    n : int
        Number of images, >= 1.
    seed : int, optional
        Non-negative seed; the same ``(seed, i)`` always gives the same image ``i``.
    image_size : int, optional
        Side of the square images in pixels, 16 to 1024.
    objects_per_image : int, optional
        1 to 5 objects per image. With several, the label is the class of the
        largest object (drawn first, never covered by a larger one).

    Returns
    -------
    ImageSet
        RGB images; ``labels`` are class names; ``meta["objects"][i]`` lists every
        object of image ``i`` as ``{"class", "box": (x0, y0, x1, y1), "center",
        "radius"}`` in pixels, largest first; ``meta["classes"]`` the class list.

    Raises
    ------
    ValueError
        Arguments out of range.
    """
    n, seed, image_size, k = (
        _as_int(v, name)
        for v, name in (
            (n, "n"),
            (seed, "seed"),
            (image_size, "image_size"),
            (objects_per_image, "objects_per_image"),
        )
    )
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 16 <= image_size <= 1024:
        raise ValueError(f"image_size must be between 16 and 1024 pixels, got {image_size}")
    if not 1 <= k <= 5:
        raise ValueError(f"objects_per_image must be between 1 and 5, got {k}")
    images, names, labels, objects = [], [], [], []
    for i in range(n):
        img, objs = _render(np.random.default_rng([seed, i]), image_size, k)
        images.append(img)
        labels.append(objs[0]["class"])
        names.append(f"shape_{i:04d}_{objs[0]['class']}")
        objects.append(objs)
    plural = "object" if k == 1 else "objects"
    return ImageSet(
        images=images,
        names=names,
        labels=labels,
        description=f"{n} procedural shapes ({k} {plural} per image, {image_size}px, seed {seed})",
        meta={
            "classes": list(SHAPE_CLASSES),
            "objects": objects,
            "seed": seed,
            "image_size": image_size,
            "objects_per_image": k,
        },
    )


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _render(rng: np.random.Generator, size: int, k: int) -> tuple[Image.Image, list[dict]]:
    base = rng.uniform(0.1, 0.9, size=3)
    canvas = _background(rng, size, base)
    if k == 1:
        radii = [rng.uniform(0.16, 0.32) * size]
    else:
        radii = sorted((rng.uniform(0.10, 0.22) * size for _ in range(k)), reverse=True)
    centers = _place(rng, size, radii)
    objects = []
    for radius, center in zip(radii, centers, strict=True):
        cls = SHAPE_CLASSES[int(rng.integers(len(SHAPE_CLASSES)))]
        alpha = _mask(cls, size, center, radius, rng.uniform(0.0, 2.0 * math.pi))
        colour = _contrasting_colour(rng, base)
        shade = colour + rng.normal(0.0, 0.03, size=(size, size, 3))  # faint object texture
        canvas = canvas * (1.0 - alpha[..., None]) + shade * alpha[..., None]
        ys, xs = np.nonzero(alpha > 0.25)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        objects.append(
            {
                "class": cls,
                "box": box,
                "center": (float(center[0]), float(center[1])),
                "radius": float(radius),
            }
        )
    canvas += rng.normal(0.0, 0.02, size=canvas.shape)  # sensor-like noise over everything
    pixels = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB"), objects


def _background(rng: np.random.Generator, size: int, base: np.ndarray) -> np.ndarray:
    other = np.clip(base + rng.normal(0.0, 0.2, size=3), 0.0, 1.0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    kind = int(rng.integers(5))
    if kind == 0:  # per-pixel noise
        return base + rng.normal(0.0, rng.uniform(0.04, 0.1), size=(size, size, 3))
    angle = rng.uniform(0.0, 2.0 * math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    if kind == 1:  # linear gradient
        weight = (u - u.min()) / max(u.max() - u.min(), 1e-9)
    elif kind == 2:  # stripes
        weight = 0.5 + 0.5 * np.sin(2.0 * math.pi * rng.uniform(2.0, 8.0) * u)
        weight *= rng.uniform(0.3, 0.7)
    elif kind == 3:  # soft checker
        cells = rng.uniform(3.0, 10.0)
        v = -xx * math.sin(angle) + yy * math.cos(angle)
        weight = ((np.floor(u * cells) + np.floor(v * cells)) % 2) * rng.uniform(0.25, 0.5)
    else:  # smooth blobs: coarse noise upsampled
        coarse = rng.uniform(0.0, 1.0, size=(int(rng.integers(3, 8)),) * 2)
        weight = (
            np.asarray(
                Image.fromarray((coarse * 255).astype(np.uint8)).resize(
                    (size, size), Image.BICUBIC
                ),
                dtype=np.float64,
            )
            / 255.0
        )
    canvas = base * (1.0 - weight[..., None]) + other * weight[..., None]
    return canvas + rng.normal(0.0, 0.02, size=(size, size, 3))


def _place(rng: np.random.Generator, size: int, radii: list[float]) -> list[tuple[float, float]]:
    """Centres that keep every object inside the image; without overlap when it fits."""
    centers: list[tuple[float, float]] = []
    for radius in radii:
        lo, hi = radius + 1.0, size - radius - 1.0
        best, best_gap = None, -math.inf
        for _ in range(60):
            c = (rng.uniform(lo, hi), rng.uniform(lo, hi))
            gap = min(
                (math.dist(c, o) - radius - r for o, r in zip(centers, radii, strict=False)),
                default=math.inf,
            )
            if gap > best_gap:
                best, best_gap = c, gap
            if gap >= 2.0:
                break
        centers.append(best)
    return centers


def _contrasting_colour(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    best, best_dist = None, -1.0
    for _ in range(50):
        colour = rng.uniform(0.0, 1.0, size=3)
        dist = float(np.linalg.norm(colour - base))
        if dist > best_dist:
            best, best_dist = colour, dist
        if dist >= 0.55:
            break
    return best


def _mask(
    cls: str, size: int, center: tuple[float, float], radius: float, angle: float
) -> np.ndarray:
    """Anti-aliased alpha in [0, 1] of one object, shape ``(size, size)``."""
    s = _SUPERSAMPLE
    big = Image.new("L", (size * s, size * s), 0)
    draw = ImageDraw.Draw(big)
    cx, cy, r = center[0] * s, center[1] * s, radius * s

    def poly(points: list[tuple[float, float]], fill: int = 255) -> None:
        ca, sa = math.cos(angle), math.sin(angle)
        draw.polygon(
            [(cx + r * (x * ca - y * sa), cy + r * (x * sa + y * ca)) for x, y in points], fill=fill
        )

    def regular(count: int, rad: float = 1.0, phase: float = 0.0) -> list[tuple[float, float]]:
        return [
            (
                rad * math.cos(phase + 2 * math.pi * j / count),
                rad * math.sin(phase + 2 * math.pi * j / count),
            )
            for j in range(count)
        ]

    def disc(x: float, y: float, rad: float, fill: int = 255) -> None:
        draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=fill)

    if cls == "disc":
        disc(cx, cy, r)
    elif cls == "square":
        poly(regular(4))
    elif cls == "triangle":
        poly(regular(3))
    elif cls == "hexagon":
        poly(regular(6))
    elif cls == "star":
        outer, inner = regular(5, 1.0), regular(5, 0.42, math.pi / 5)
        poly([p for pair in zip(outer, inner, strict=True) for p in pair])
    elif cls == "cross":
        w = 0.32
        poly(
            [
                (w, 1),
                (-w, 1),
                (-w, w),
                (-1, w),
                (-1, -w),
                (-w, -w),
                (-w, -1),
                (w, -1),
                (w, -w),
                (1, -w),
                (1, w),
                (w, w),
            ]
        )
    elif cls == "ring":
        disc(cx, cy, r)
        disc(cx, cy, 0.55 * r, fill=0)
    elif cls == "crescent":
        disc(cx, cy, r)
        disc(cx + 0.5 * r * math.cos(angle), cy + 0.5 * r * math.sin(angle), 0.85 * r, fill=0)
    else:  # pragma: no cover - SHAPE_CLASSES and this switch are kept in step
        raise AssertionError(cls)
    small = big.resize((size, size), Image.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0
