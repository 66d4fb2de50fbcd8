"""The :class:`ImageSet` container shared by every image source."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

__all__ = ["ImageSet"]


@dataclass
class ImageSet:
    """A list of RGB images with names and optional class labels.

    Attributes
    ----------
    images : list of PIL.Image.Image
        Mode ``"RGB"`` images, possibly of different sizes.
    names : list of str
        One display name per image.
    labels : list of str or None
        One class label per image, or None when the source has no labels.
    skipped : list of (str, str)
        ``(file name, reason)`` for every input that could not be used.
    description : str
        One line that says where the images come from.
    meta : dict
        Source-specific details, e.g. object boxes for ``shapes`` or crop offsets
        for ``crops``.
    """

    images: list[Image.Image]
    names: list[str]
    labels: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.names)} names")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)
