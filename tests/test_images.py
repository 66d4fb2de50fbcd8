"""Image sets and robust decoding; every bad file is generated here."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from semrsm.images import (
    PHOTO_FILES,
    SHAPE_CLASSES,
    ImageError,
    ImageSet,
    decode_image,
    from_folder,
    from_uploads,
    grid_offsets,
    load_image_set,
    make_crops,
    make_shapes,
    photos,
)


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def rgb(size=(24, 16), colour=(200, 40, 10)) -> Image.Image:
    return Image.new("RGB", size, colour)


def png_claiming(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims ``width x height`` pixels (a decompression bomb)."""
    data = bytearray(encode(Image.new("L", (4, 4), 0)))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


# ----------------------------------------------------------------------------- shapes


def test_shapes_are_deterministic_and_prefix_stable():
    a = make_shapes(6, seed=3)
    b = make_shapes(6, seed=3)
    c = make_shapes(3, seed=3)
    d = make_shapes(6, seed=4)
    for x, y in zip(a.images, b.images, strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    for x, y in zip(c.images, a.images[:3], strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    assert a.labels == b.labels and a.names == b.names
    assert not np.array_equal(np.asarray(a.images[0]), np.asarray(d.images[0]))


def test_shapes_cover_all_classes_with_valid_boxes():
    s = make_shapes(160, seed=0, image_size=64)
    assert len(SHAPE_CLASSES) >= 8
    assert set(s.labels) == set(SHAPE_CLASSES)
    assert len(s) == 160 and s.skipped == []
    for img, objs, label in zip(s.images, s.meta["objects"], s.labels, strict=True):
        assert img.mode == "RGB" and img.size == (64, 64)
        assert len(objs) == 1 and objs[0]["class"] == label
        x0, y0, x1, y1 = objs[0]["box"]
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
        # the object's box is visibly different from the image border region on average
        assert x1 - x0 >= 8 and y1 - y0 >= 8


def test_shapes_vary_position_scale_colour():
    s = make_shapes(40, seed=1)
    centers = np.array([o[0]["center"] for o in s.meta["objects"]])
    radii = np.array([o[0]["radius"] for o in s.meta["objects"]])
    assert centers.std(axis=0).min() > 8.0
    assert radii.max() - radii.min() > 8.0
    means = np.array([np.asarray(im).reshape(-1, 3).mean(0) for im in s.images])
    assert means.std(axis=0).min() > 10.0


def test_shapes_multi_object_label_is_largest():
    s = make_shapes(20, seed=2, objects_per_image=3)
    for objs, label in zip(s.meta["objects"], s.labels, strict=True):
        assert len(objs) == 3
        radii = [o["radius"] for o in objs]
        assert radii == sorted(radii, reverse=True)
        assert label == objs[0]["class"]
    assert s.meta["objects_per_image"] == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n=0),
        dict(n=3, seed=-1),
        dict(n=3, image_size=8),
        dict(n=3, objects_per_image=0),
        dict(n=2.5),
    ],
)
def test_shapes_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_shapes(**kwargs)


# ----------------------------------------------------------------------------- photos, crops


def test_photos_are_bundled_rgb():
    p = photos()
    assert p.skipped == []
    assert p.names == list(PHOTO_FILES)
    assert len(p) >= 12
    assert all(im.mode == "RGB" and min(im.size) >= 100 for im in p.images)
    assert {"astronaut", "coffee", "chelsea", "rocket", "camera"} <= set(p.names)


def test_crops_are_translated_windows_of_the_source():
    src = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    c = make_crops([src], n_per_source=9, crop_frac=0.5)
    assert len(c) == 9 and c.labels == ["image0"] * 9
    side = c.meta["crop_size"]
    assert side == 30
    offsets = c.meta["offsets"]
    assert offsets[0] == (0, 0) and offsets[-1] == (30, 50)  # grid spans the whole image
    assert len(set(offsets)) == 9
    arr = np.asarray(src)
    for img, (dy, dx) in zip(c.images, offsets, strict=True):
        assert np.array_equal(np.asarray(img), arr[dy : dy + side, dx : dx + side])


def test_crops_of_named_photos_with_output_size():
    c = make_crops(["astronaut", "coffee"], n_per_source=4, output_size=48)
    assert c.labels == ["astronaut"] * 4 + ["coffee"] * 4
    assert c.meta["sources"] == [0] * 4 + [1] * 4
    assert all(im.size == (48, 48) for im in c.images)
    assert c.meta["source_names"] == ["astronaut", "coffee"]


def test_grid_offsets_non_square_count():
    offs = grid_offsets(100, 100, 50, 6)
    assert len(offs) == 6 and len(set(offs)) == 6
    assert all(0 <= y <= 50 and 0 <= x <= 50 for y, x in offs)


@pytest.mark.parametrize("args", [([],), (["nope"],), (["astronaut"], 0), (["astronaut"], 4, 1.5)])
def test_crops_bad_arguments(args):
    with pytest.raises(ValueError):
        make_crops(*args)


# ----------------------------------------------------------------------------- decoding


def test_decode_exif_orientation():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    out = decode_image(encode(img, "JPEG", exif=exif, quality=95), "rot.jpg")
    assert out.size == (20, 40)
    arr = np.asarray(out).astype(int)
    assert arr[2, 10, 2] > 200 and arr[2, 10, 0] < 60  # blue is now at the top


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "YCbCr", "LA", "RGBA", "I;16", "I", "F"])
def test_decode_converts_every_mode_to_rgb(mode):
    base = rgb((12, 10), (90, 160, 30))
    if mode == "I;16":
        img = Image.fromarray(np.full((10, 12), 65535, dtype=np.uint16))
        assert img.mode.startswith("I;16")
    elif mode == "I":
        img = Image.fromarray(np.full((10, 12), 1000, dtype=np.int32))
    elif mode == "F":
        img = Image.fromarray(np.linspace(-3, 5, 120, dtype=np.float32).reshape(10, 12))
    else:
        img = base.convert(mode)
    fmt = {"CMYK": "TIFF", "YCbCr": "JPEG", "I": "TIFF", "F": "TIFF"}.get(mode, "PNG")
    out = decode_image(encode(img, fmt), f"x.{fmt.lower()}")
    assert out.mode == "RGB" and out.size == (12, 10)
    arr = np.asarray(out)
    if mode == "I;16":
        assert arr.min() == 255  # full 16-bit range maps to full 8-bit range
    if mode == "F":
        assert arr.min() == 0 and arr.max() == 255


def test_decode_alpha_is_composited_on_white():
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 255))
    img.putpixel((0, 0), (0, 0, 0, 0))
    out = np.asarray(decode_image(encode(img)))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[4, 4]) == (255, 0, 0)
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.info["transparency"] = 1
    out = np.asarray(decode_image(encode(pal, transparency=1)))
    assert tuple(out[0, 0]) == (255, 255, 255)


def test_decode_animated_gif_takes_first_frame():
    frames = [Image.new("P", (6, 6), i) for i in (10, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = decode_image(buf.getvalue(), "anim.gif")
    assert out.mode == "RGB" and out.size == (6, 6)


@pytest.mark.parametrize(
    "case,fragment",
    [
        ("empty", "empty"),
        ("text", "not an image"),
        ("random", "not an image"),
        ("truncated_png", "truncated or corrupt"),
        ("truncated_jpeg", "truncated or corrupt"),
        ("corrupt_png", "truncated or corrupt"),
        ("bomb", "decompression bomb"),
    ],
)
def test_decode_bad_files_raise_image_error(case, fragment):
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    png, jpeg = encode(noise), encode(noise, "JPEG")
    data = {
        "empty": b"",
        "text": b"hello, I am not an image\n" * 10,
        "random": np.random.default_rng(0).integers(0, 255, 500, dtype=np.uint8).tobytes(),
        "truncated_png": png[: len(png) // 2],
        "truncated_jpeg": jpeg[: len(jpeg) // 2],
        "corrupt_png": png[:60] + b"\x00" * 200 + png[260:],
        "bomb": png_claiming(30000, 30000),
    }[case]
    with pytest.raises(ImageError, match=fragment) as info:
        decode_image(data, "bad.png")
    assert isinstance(info.value, ValueError)
    assert "bad.png" in str(info.value)


def test_decode_respects_pixel_limit_and_pillow_bomb_guard(monkeypatch):
    data = encode(rgb((100, 100)))
    with pytest.raises(ImageError, match="too large"):
        decode_image(data, max_pixels=5000)
    # Pillow's own guard (warning between the limits, error above) is turned into ImageError too.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    with pytest.raises(ImageError, match="decompression bomb"):
        decode_image(data)  # 10,000 pixels: above twice the limit, Pillow raises
    with pytest.raises(ImageError, match="decompression bomb"):
        decode_image(encode(rgb((70, 70))))  # 4,900 pixels: Pillow only warns


# ----------------------------------------------------------------------------- uploads, folders


def test_from_uploads_skips_bad_files_with_reasons():
    files = [
        ("good.png", encode(rgb())),
        ("bad.txt", b"nope"),
        ("empty.jpg", b""),
        ("bomb.png", png_claiming(20000, 20000)),
        ("gray.jpg", encode(rgb().convert("L"), "JPEG")),
    ]
    s = from_uploads(files)
    assert s.names == ["good.png", "gray.jpg"]
    assert s.labels is None
    reasons = dict(s.skipped)
    assert set(reasons) == {"bad.txt", "empty.jpg", "bomb.png"}
    assert "not an image" in reasons["bad.txt"] and "empty" in reasons["empty.jpg"]
    assert "too large" in reasons["bomb.png"]
    assert from_uploads([("x", b"junk")]).images == []


def make_tree(root, with_bad=True):
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    (root / ".hidden").mkdir()
    (root / "cats" / "a.png").write_bytes(encode(rgb()))
    (root / "cats" / "b.jpg").write_bytes(encode(rgb(), "JPEG"))
    (root / "dogs" / "c.bmp").write_bytes(encode(rgb(), "BMP"))
    (root / "dogs" / ".DS_Store").write_bytes(b"junk")
    (root / ".hidden" / "d.png").write_bytes(encode(rgb()))
    if with_bad:
        (root / "dogs" / "broken.png").write_bytes(encode(rgb())[:30])
        (root / "dogs" / "notes.txt").write_text("not an image")
        (root / "loose.png").write_bytes(encode(rgb()))


def test_from_folder_labels_from_subfolders(tmp_path):
    make_tree(tmp_path)
    s = from_folder(str(tmp_path))
    assert s.names == ["cats/a.png", "cats/b.jpg", "dogs/c.bmp"]
    assert s.labels == ["cats", "cats", "dogs"]
    reasons = dict(s.skipped)
    assert set(reasons) == {"dogs/broken.png", "dogs/notes.txt", "loose.png"}
    assert "truncated" in reasons["dogs/broken.png"]
    assert "not an image" in reasons["dogs/notes.txt"]
    assert "class sub-folder" in reasons["loose.png"]


def test_from_folder_flat_has_no_labels(tmp_path):
    (tmp_path / "x.png").write_bytes(encode(rgb()))
    (tmp_path / "y.gif").write_bytes(encode(rgb().convert("P"), "GIF"))
    s = from_folder(str(tmp_path))
    assert s.labels is None and s.names == ["x.png", "y.gif"]


def test_from_folder_refuses_paths_outside_data_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    make_tree(root / "set", with_bad=False)
    make_tree(outside, with_bad=False)
    assert len(from_folder("set", data_root=str(root))) == 3  # relative to the root
    with pytest.raises(ImageError, match="outside"):
        from_folder(str(outside), data_root=str(root))
    with pytest.raises(ImageError, match="outside"):
        from_folder(str(root / "set" / ".." / ".." / "outside"), data_root=str(root))
    # a link inside the root that points outside: the folder itself is refused ...
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ImageError, match="outside"):
        from_folder("link", data_root=str(root))
    # ... and so is a linked file or class folder inside an allowed folder
    (root / "set" / "cats" / "evil.png").symlink_to(outside / "cats" / "a.png")
    (root / "set" / "birds").symlink_to(outside / "dogs", target_is_directory=True)
    s = from_folder("set", data_root=str(root))
    reasons = dict(s.skipped)
    # the linked class folder is skipped under its own name; nothing behind it is listed
    assert "outside" in reasons["cats/evil.png"] and "outside" in reasons["birds"]
    assert not any(name.startswith("birds/") for name in reasons)
    assert "cats/evil.png" not in s.names and len(s) == 3


def test_from_folder_errors(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        from_folder(str(tmp_path / "missing"))
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ImageError, match="not a folder"):
        from_folder(str(tmp_path / "f.txt"))
    with pytest.raises(ImageError, match="no usable image"):
        from_folder(str(tmp_path))


# ----------------------------------------------------------------------------- specs


def test_load_image_set_specs(tmp_path):
    s = load_image_set("shapes:5", seed=2)
    assert isinstance(s, ImageSet) and len(s) == 5
    assert s.labels == make_shapes(5, seed=2).labels
    assert load_image_set("shapes:4:3").meta["objects_per_image"] == 3
    assert len(load_image_set("shapes")) == 64
    assert load_image_set("photos").names == list(PHOTO_FILES)
    c = load_image_set("crops:astronaut")
    assert len(c) == 9 and set(c.labels) == {"astronaut"}
    c = load_image_set("crops:astronaut,coffee:4")
    assert len(c) == 8 and c.labels[-1] == "coffee"
    make_tree(tmp_path / "ds", with_bad=False)
    assert load_image_set(str(tmp_path / "ds")).labels == ["cats", "cats", "dogs"]
    assert len(load_image_set("ds", data_root=str(tmp_path))) == 3


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("", "empty"),
        ("shapes:x", "integer"),
        ("shapes:0", "n must be"),
        ("shapes:4:9", "objects_per_image"),
        ("shapes:1:2:3", "too many"),
        ("photos:3", "no arguments"),
        ("crops:", "names no photo"),
        ("crops:unicorn", "unknown photo"),
        ("crops:astronaut:x", "integer"),
        ("no_such_thing", "image-set specs"),
    ],
)
def test_load_image_set_bad_specs(spec, fragment):
    with pytest.raises(ImageError, match=fragment):
        load_image_set(spec)
