"""Hostile inputs are bounded *before* memory is allocated, and end in a message.

* 16-bit and 32-bit images (a 7999 x 7999 16-bit PNG is 140 KB) decode within a stated
  budget; a TIFF whose one strip alone would exceed it is refused from its header.
* A checkpoint whose header claims a huge classifier (6,000,000 classes in a 1.5 MB file)
  is refused before the model is built; compressed and legacy torch files, safetensors
  headers that disagree with the file, and over-long paths are messages.
* A model's size is known before it is built (meta device); the app builds a model over
  the confirmation threshold only after a click, even when a link names it.

Memory is measured in a fresh interpreter (``tests/memory.py``): growth of the peak RSS.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image, features
from safetensors.torch import load_file, save_file

from semrsm.catalog import ASSETS_DIR, DEMO_MODELS, POPULAR_MODELS
from semrsm.images import ImageError, decode_image
from semrsm.models import (
    ModelError,
    create_model,
    estimate_model_size,
    load_checkpoint,
    read_checkpoint_header,
)
from tests.memory import peak_growth

ROOT = Path(__file__).resolve().parents[1]
#: The budget every hostile input must stay within (growth of the peak RSS).
BUDGET_MB = 300
SIDE = 7999
GIANT = "vit_giant_patch14_dinov2"

pytestmark = pytest.mark.timeout(900)


# ----------------------------------------------------------------------------- images


def _big_deep_image(path: Path, fmt: str, dtype) -> None:
    """A mostly constant SIDE x SIDE image of ``dtype`` (compresses to ~0.1-0.4 MB)."""
    a = np.full((SIDE, SIDE), 20000, dtype=dtype)
    a[100:200, 100:3000] = 60000
    kwargs = {"compression": "tiff_deflate"} if fmt == "TIFF" else {}
    Image.fromarray(a).save(path, fmt, **kwargs)


def _decode_growth(path: Path, max_side: int | None = 1024) -> tuple[float, str | None]:
    return peak_growth(
        f"img = decode_image(data, 'x', max_side={max_side})\n"
        "assert img.mode == 'RGB', img.mode\n"
        "print(img.size)",
        setup="from semrsm.images.decode import decode_image\n"
        f"data = open({str(path)!r}, 'rb').read()",
    )


@pytest.mark.parametrize(
    "fmt,dtype,mode",
    [("PNG", np.uint16, "I;16"), ("TIFF", np.uint16, "I;16"), ("TIFF", np.float32, "F")],
)
def test_deep_images_decode_within_the_budget(tmp_path, fmt, dtype, mode):
    if fmt == "TIFF" and not features.check("libtiff"):
        pytest.skip("Pillow without libtiff cannot write compressed TIFF")
    path = tmp_path / f"big.{fmt.lower()}"
    _big_deep_image(path, fmt, dtype)
    assert path.stat().st_size < 500_000
    with Image.open(path) as im:
        assert im.mode == mode and im.size == (SIDE, SIDE)
    growth, err = _decode_growth(path)
    assert err is None, err
    # before: 2.1 GB (a float64 copy of the whole image and its temporaries)
    assert growth < BUDGET_MB, f"{fmt} {mode}: peak grew by {growth:.0f} MB"


def test_deep_image_values_survive_the_strips(monkeypatch):
    """Strip by strip gives what one reduction of the whole image gives."""
    import semrsm.images.decode as decode

    rng = np.random.default_rng(0)
    a = rng.integers(0, 65536, size=(61, 47), dtype=np.uint16)
    img = Image.fromarray(a)
    ref = np.asarray(img.convert("F").reduce(3), dtype=np.float64) / 257.0
    monkeypatch.setattr(decode, "STRIP_PIXELS", 47 * 5)  # many strips of 3 rows
    out = np.asarray(decode._deep_to_rgb(img, 3))
    assert out.shape == (21, 16, 3)
    assert np.abs(out[..., 0].astype(int) - np.rint(ref).astype(int)).max() <= 1
    # float data with non-finite values: min-max over the finite ones, NaN -> 0
    f = np.linspace(-3, 5, 600, dtype=np.float32).reshape(20, 30)
    f[0, 0] = np.nan
    out = np.asarray(decode._deep_to_rgb(Image.fromarray(f), 1))
    lo = float(np.nanmin(f))
    assert out[0, 0, 0] == round(-lo / (5.0 - lo) * 255)  # the NaN became the value 0
    assert out[0, 1, 0] == 0 and out[-1, -1, 0] == 255


def _tiff_one_strip(w: int, h: int, samples: int = 3, bits: int = 16) -> bytes:
    """A deflate TIFF stored as one strip of ``samples`` x ``bits``-bit values."""
    row = struct.pack(f"<{samples}H", *([30000] * samples)) * w
    data = zlib.compress(row * h, 9)
    bps_at, data_at = 8, 8 + 2 * samples + (2 * samples) % 4
    ifd_at = data_at + len(data) + len(data) % 2
    entries = [
        (256, 4, 1, w), (257, 4, 1, h), (258, 3, samples, bps_at), (259, 3, 1, 8),
        (262, 3, 1, 2), (273, 4, 1, data_at), (277, 3, 1, samples), (278, 4, 1, h),
        (279, 4, 1, len(data)), (284, 3, 1, 1),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        short = typ == 3 and count == 1  # one SHORT value sits left-justified in the field
        packed = struct.pack("<HH", value, 0) if short else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, typ, count) + packed
    head = b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack(f"<{samples}H", *[bits] * samples)
    head += b"\x00" * (data_at - len(head))
    return head + data + b"\x00" * (len(data) % 2) + ifd + struct.pack("<I", 0)


def test_tiff_with_one_huge_strip_is_refused_from_its_header(tmp_path):
    if not features.check("libtiff"):
        pytest.skip("Pillow without libtiff does not read deflate TIFF")
    small = _tiff_one_strip(20, 10)
    assert decode_image(small).size == (20, 10)  # the same layout, small, decodes
    path = tmp_path / "rgb16.tif"
    path.write_bytes(_tiff_one_strip(SIDE, SIDE))
    assert path.stat().st_size < 600_000
    growth, err = _decode_growth(path)
    # before: +614 MB (384 MB strip buffer + 256 MB RGB pixels) for a 373 KB file
    assert err is not None and err.startswith("ImageError"), err
    assert "TIFF strip" in err and "limit of 300 MB" in err and "strips of fewer rows" in err
    assert growth < 50, growth
    with pytest.raises(ImageError, match="would take 640 MB"):
        decode_image(path.read_bytes(), "rgb16.tif")


# ----------------------------------------------------------------------------- checkpoints


def _six_million_classes(path: Path) -> None:
    """Demo weights whose classifier claims 6,000,000 classes, in a ~1.5 MB file."""
    state = load_file(str(ASSETS_DIR / "demo-resnet.safetensors"))
    if path.suffix == ".safetensors":
        state["fc.weight"] = torch.zeros(6_000_000, 0)  # no bytes, any number of rows
        save_file(state, str(path))
    else:
        width = state["fc.weight"].shape[1]
        # zero-stride views of one number: torch.save stores one element for each
        state["fc.weight"] = torch.zeros(1).expand(6_000_000, width)
        state["fc.bias"] = torch.zeros(1).expand(6_000_000)
        torch.save(state, path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_checkpoint_claiming_six_million_classes_is_refused_before_allocating(tmp_path, suffix):
    path = tmp_path / f"claims{suffix}"
    _six_million_classes(path)
    assert path.stat().st_size < 2_000_000
    growth, err = peak_growth(
        f"create_model('demo-resnet', weights='file', checkpoint={str(path)!r})",
        setup="import timm, torch\nfrom semrsm.models import create_model\n"
        "create_model('demo-resnet')  # imports and first-use costs before the measurement",
    )
    # before: +2.2 GB (a model with a 6,000,000-class head was built, then "does not fit",
    # or for the .pt file, built and loaded)
    assert err is not None and err.startswith("ModelError"), err
    if suffix == ".safetensors":
        assert "does not fit 'demo-resnet'" in err and "(6000000, 0)" in err
    else:
        assert "not a plain weights file" in err and "6,000,000 elements" in err
    assert growth < BUDGET_MB, growth


def _safetensors(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    "header,data,fragment",
    [
        ({"w": {"dtype": "F32", "shape": [6_000_000, 512], "data_offsets": [0, 16]}},
         b"\0" * 16, "claims shape (6000000, 512)"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "stores 16"),
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16, "overlap"),
        ({"w": {"dtype": "Q9", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 16,
         "unsupported dtype"),
        ({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, b"\0" * 16,
         "malformed entry"),
    ],
)
def test_safetensors_header_must_agree_with_the_file(tmp_path, header, data, fragment):
    path = tmp_path / "w.safetensors"
    path.write_bytes(_safetensors(header, data))
    with pytest.raises(ModelError, match="could not be read") as info:
        read_checkpoint_header(path)
    assert fragment in str(info.value)


def test_safetensors_header_length_beyond_the_file(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(ModelError, match="its header claims 1,000,000,000,000 bytes"):
        read_checkpoint_header(path)


def test_compressed_torch_zip_is_refused(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(5_000_000)}, plain)  # 20 MB of zeros
    packed = tmp_path / "packed.pt"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(packed, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename), zipfile.ZIP_DEFLATED)
    assert packed.stat().st_size < 100_000  # torch.load alone would expand it 200-fold
    with pytest.raises(ModelError, match="not a plain weights file: it has compressed entries"):
        load_checkpoint(packed)
    state, _ = load_checkpoint(plain)  # the same data stored plainly loads (memory-mapped)
    assert state["w"].shape == (5_000_000,)


def test_legacy_torch_format_is_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"w": torch.zeros(3)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ModelError, match="not a plain weights file.*legacy format"):
        load_checkpoint(path)


def test_long_checkpoint_paths_are_messages(tmp_path):
    from semrsm.explorer.config import ExplorerConfig
    from semrsm.explorer.sources import load_model

    long = str(tmp_path / ("a" * 5000)) + ".pt"
    with pytest.raises(ModelError, match=r"is [\d,]+ characters long \(limit 1,024\)"):
        create_model("demo-resnet", weights="file", checkpoint=long)
    config = ExplorerConfig(model="demo-resnet", weights="file", checkpoint=long)
    with pytest.raises(ModelError, match="characters long"):
        load_model(config)  # what the app's sidebar calls (before: OSError traceback)
    one_name = str(tmp_path / ("b" * 300)) + ".pt"  # a single name over 255 bytes
    with pytest.raises(ModelError, match=r"cannot be opened \(the path is too long\)"):
        create_model("demo-resnet", weights="file", checkpoint=one_name)


# ----------------------------------------------------------------------------- model size


@pytest.mark.parametrize("name", ["test_resnet", "test_vit", "demo-resnet", "demo-vit"])
def test_meta_estimate_equals_the_real_count(name):
    size = estimate_model_size(name)
    real = create_model(name, weights="none").model
    params = sum(p.numel() for p in real.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in [*real.parameters(), *real.buffers()])
    assert size is not None and (size.params, size.nbytes) == (params, nbytes)
    assert size.name == name
    # another classifier size, as a checkpoint with other classes builds it
    demo = DEMO_MODELS.get(name)
    arch, kwargs = (demo["arch"], demo["kwargs"]) if demo else (name, {})
    ten = timm.create_model(arch, pretrained=False, **{**kwargs, "num_classes": 10})
    assert estimate_model_size(name, num_classes=10).params == sum(
        p.numel() for p in ten.parameters()
    )


def test_estimating_a_giant_costs_no_memory():
    growth, err = peak_growth(
        f"size = estimate_model_size({GIANT!r})\n"
        "assert size.params > 1_100_000_000 and size.nbytes > 4_500_000_000, size\n",
        setup="import timm, torch\nfrom semrsm.models import estimate_model_size\n"
        "estimate_model_size('test_resnet')",
    )
    assert err is None, err
    assert growth < 100, growth  # building it: +7 GB and 270 s on the development machine


def test_create_model_refuses_over_max_params_or_available_memory(monkeypatch):
    import semrsm.models as models

    with pytest.raises(ModelError, match="above max_params=1,000; pass a larger max_params"):
        create_model("test_resnet", weights="none", max_params=1000)
    assert create_model("test_resnet", weights="none", max_params=10**6).weights == "none"
    monkeypatch.setattr(models, "available_memory", lambda: 1_000_000)
    with pytest.raises(ModelError, match="for its weights alone .* 976.6 KiB of memory is available"):
        create_model("test_resnet", weights="none")
    with pytest.raises(ModelError, match="memory is available"):  # checkpoints too
        create_model("demo-resnet")


def test_confirmation_threshold_and_its_setting(monkeypatch):
    from semrsm.explorer.sources import (
        CONFIRM_PARAMS_ENV,
        DEFAULT_CONFIRM_PARAMS,
        confirm_params,
        needs_confirmation,
        parse_count,
    )

    monkeypatch.delenv(CONFIRM_PARAMS_ENV, raising=False)
    assert confirm_params() == DEFAULT_CONFIRM_PARAMS == 500_000_000
    need = needs_confirmation(GIANT)
    assert need is not None and need.size.params > DEFAULT_CONFIRM_PARAMS
    assert "1.14 billion parameters" in str(need) and "4.2 GiB" in str(need)
    assert CONFIRM_PARAMS_ENV in str(need) and need.memory == "4.2 GiB"
    # the sidebar's own list never asks (each is sized on the meta device)
    for small in ("demo-resnet", "demo-vit", "resnet18", *POPULAR_MODELS):
        assert needs_confirmation(small) is None, small
    assert needs_confirmation("no_such_model_xyz") is None  # building it names the error
    monkeypatch.setenv(CONFIRM_PARAMS_ENV, "2G")
    assert confirm_params() == 2 * 10**9 and needs_confirmation(GIANT) is None
    monkeypatch.setenv(CONFIRM_PARAMS_ENV, "0")
    assert needs_confirmation("resnet18") is not None
    monkeypatch.setenv(CONFIRM_PARAMS_ENV, "lots")
    with pytest.warns(UserWarning, match="not a parameter count"):
        assert confirm_params() == DEFAULT_CONFIRM_PARAMS
    assert [parse_count(t) for t in ("800M", "1.5B", "2_000", "3k")] == [
        800_000_000, 1_500_000_000, 2000, 3000,
    ]


def test_a_link_never_builds_a_giant_model_without_a_click(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import semrsm.models as models

    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SEMRSM_DATA_ROOT", raising=False)
    monkeypatch.delenv("SEMRSM_CONFIRM_PARAMS", raising=False)
    built: list[str] = []
    real_build = models._build

    def spy(name, kwargs, pretrained, seed):
        built.append(name)
        if name in (GIANT, "vit_gigantic_patch14_clip_224"):
            raise ModelError(f"test spy: {name} would be built now")
        return real_build(name, kwargs, pretrained, seed)

    monkeypatch.setattr(models, "_build", spy)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    for key, value in {"model": GIANT, "weights": "none", "images": "shapes:8"}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert built == []  # nothing was built, not even started
    (prompt,) = [w.value for w in at.warning if GIANT in w.value]
    assert "1.14 billion parameters" in prompt and "4.2 GiB" in prompt
    assert "SEMRSM_CONFIRM_PARAMS" in prompt
    button = at.button(key=f"semrsm_build_{GIANT}")
    assert button.label == f"Build {GIANT} (4.2 GiB)"
    assert any("not built until you click" in c.value for c in at.caption)  # sidebar

    # typed into the picker: the same gate
    at.text_input(key="sb_model_custom").input("vit_gigantic_patch14_clip_224").run()
    assert not at.exception and built == []
    assert any("1.84 billion parameters" in w.value for w in at.warning)

    # the click (and only the click) starts the build
    at.text_input(key="sb_model_custom").input(GIANT).run()
    assert built == []
    at.button(key=f"semrsm_build_{GIANT}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert built and set(built) == {GIANT}
    assert any("test spy" in e.value for e in at.error)


def test_demo_checkpoint_round_trip_still_memory_maps(tmp_path):
    """torch files are read memory-mapped: tensors come from the file, values intact."""
    state = load_file(str(ASSETS_DIR / "demo-resnet.safetensors"))
    path = tmp_path / "demo.pt"
    torch.save(state, path)
    header = read_checkpoint_header(path)
    assert header.shapes["fc.weight"] == tuple(state["fc.weight"].shape)
    assert header.nbytes <= os.path.getsize(path)
    loaded = header.load()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    model = create_model("demo-resnet", weights="file", checkpoint=str(path))
    assert torch.equal(model.model.state_dict()["fc.weight"], state["fc.weight"])
