"""Image sets (procedural shapes, bundled photos, translated crops, folders, uploads)
and robust decoding of untrusted image files."""

from .base import ImageSet
from .crops import grid_offsets, make_crops
from .decode import MAX_PIXELS, ImageError, decode_image, to_rgb
from .folder import from_folder, from_uploads
from .photos import PHOTO_FILES, load_photo, photos
from .shapes import SHAPE_CLASSES, make_shapes
from .spec import MAX_SPEC_IMAGES, SPEC_HELP, load_image_set

__all__ = [
    "ImageSet",
    "ImageError",
    "MAX_PIXELS",
    "MAX_SPEC_IMAGES",
    "PHOTO_FILES",
    "SHAPE_CLASSES",
    "SPEC_HELP",
    "decode_image",
    "from_folder",
    "from_uploads",
    "grid_offsets",
    "load_image_set",
    "load_photo",
    "make_crops",
    "make_shapes",
    "photos",
    "to_rgb",
]
