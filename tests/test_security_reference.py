"""Reference RSM/RDM files never run code and never cost gigabytes.

A pickle whose ``__reduce__`` creates a marker file is given, as ``.pkl`` and disguised as
``.npy``/``.h5``/``.csv``, to every way in: ``load_reference(path)``,
``load_reference(bytes, file_name=...)``, ``python -m semrsm compare --reference`` and the
Compare page's upload. The marker must never appear and the message must say why and what
to do. Hostile sizes (a ``.npy`` header claiming 373 GiB, a small gzip HDF5 file claiming
12,000 images, a 144 MiB CSV) are refused from metadata within a measured memory bound
(``tests/memory.py``: peak RSS growth in a fresh interpreter).
"""

from __future__ import annotations

import io
import os
import pathlib
import pickle
import subprocess
import sys
import zlib

import numpy as np
import pytest

from semrsm.analysis import AnalysisError, load_reference
from semrsm.analysis.reference_files import (
    MAX_REFERENCE_IMAGES,
    MAX_REFERENCE_IMAGES_ENV,
    MAX_REFERENCE_TEXT_BYTES,
    max_reference_images,
)
from semrsm.analysis.statistics import upper_triangle
from tests.memory import peak_growth

ROOT = pathlib.Path(__file__).resolve().parents[1]
# peak growth allowed for a refusal; measured ≤ 1 MB (before the fix: MemoryError, +2.7 GB,
# +2.0 GB for the three hostile files below)
REFUSAL_MB = 50


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _pickle_bytes(marker: pathlib.Path, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    return pickle.dumps(_Payload(marker), protocol=protocol)


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "PWNED"
    assert not m.exists()
    return m


def test_the_payload_is_live(tmp_path):
    """Control: the payload really runs when unpickled (so its absence below means something)."""
    m = tmp_path / "control"
    pickle.loads(_pickle_bytes(m))
    assert m.exists()


# --------------------------------------------------------------------------- the library

PICKLE_NAMES = ["ref.pkl", "ref.PKL", "ref.pickle", "ref.npy", "ref.h5", "ref.hdf5", "ref.csv",
                "ref.txt"]


@pytest.mark.parametrize("name", PICKLE_NAMES)
@pytest.mark.parametrize("as_bytes", [False, True], ids=["path", "bytes"])
def test_pickles_are_refused_by_load_reference(name, as_bytes, marker, tmp_path):
    data = _pickle_bytes(marker)
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(AnalysisError) as err:
        load_reference(data, file_name=name) if as_bytes else load_reference(path)
    msg = str(err.value)
    assert not marker.exists()
    assert "pickle" in msg and "run" in msg and "file_type='hdf5'" in msg and "np.save" in msg


@pytest.mark.parametrize("name", ["ref.csv", "ref.txt"])
def test_a_text_pickle_is_just_bad_text(name, marker):
    """Protocol 0 pickles are ASCII: under a text name they are parsed as text, never run."""
    data = _pickle_bytes(marker, protocol=0)
    with pytest.raises(AnalysisError):
        load_reference(data, file_name=name)
    assert not marker.exists()


def test_an_object_npy_holding_a_pickle_is_refused(marker, tmp_path):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([_Payload(marker)] * 9, dtype=object).reshape(3, 3), allow_pickle=True)
    with pytest.raises(AnalysisError, match="not plain numbers"):
        load_reference(path)
    assert not marker.exists()


# --------------------------------------------------------------------------- the command line


def test_pickles_are_refused_by_the_cli(marker, tmp_path, capsys):
    from semrsm.__main__ import main

    for name in ("ref.pkl", "ref.npy"):
        path = tmp_path / name
        path.write_bytes(_pickle_bytes(marker))
        code = main(["compare", "--model-a", "demo-resnet", "--layer-a", "layer3",
                     "--model-b", "demo-resnet", "--layer-b", "layer4", "--images", "shapes:4",
                     "--matcher", "greedy", "--n-boot", "0", "--cache-dir", str(tmp_path / "c"),
                     "--reference", str(path)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert not marker.exists()
        assert err.startswith("error: ") and "pickle" in err and "Traceback" not in err


def test_cli_help_no_longer_offers_pickles(capsys):
    from semrsm.__main__ import main

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert ".hdf5/.h5" in out and "Pickles (.pkl) are refused" in out


# --------------------------------------------------------------------------- the Compare page


def test_pickles_are_refused_by_the_compare_page(marker, tmp_path, monkeypatch):
    """AppTest with a real upload (``file_uploader.set_value``) on a small, fast setting."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SEMRSM_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["sb_shapes_n"] = 8
    at.session_state["sb_matcher"] = "greedy"
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    up = at.file_uploader(key="cmp_reference")
    assert up.allowed_type and not any("pkl" in t or "pickle" in t for t in up.allowed_type)
    assert "pickle" in " ".join(m.value for m in at.markdown).lower()

    data = _pickle_bytes(marker)
    for name in ("ref.npy", "ref.h5", "ref.csv"):  # disguised: reach load_reference
        at.file_uploader(key="cmp_reference").set_value(
            (name, data, "application/octet-stream")).run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and "pickle" in errors[0] and "file_type='hdf5'" in errors[0]
        assert not any("Traceback" in c.value for c in at.code)  # no traceback details
        assert not marker.exists()
    # a bad but harmless file: a message too; an rsatoolbox HDF5 file is compared
    at.file_uploader(key="cmp_reference").set_value(("empty.npy", b"", "application/octet-stream"))
    at.run()
    assert not at.exception and "empty" in at.error[0].value
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(0)
    rdm = 1 - np.corrcoef(rng.random((8, 4)))
    h5 = tmp_path / "ok.hdf5"
    rsatoolbox.rdm.RDMs(upper_triangle(rdm)[None]).save(str(h5), file_type="hdf5")
    layers = at.multiselect(key="cmp_layers_a")
    layers.set_value(layers.value[:1])  # one layer of A against the reference: quicker
    at.file_uploader(key="cmp_reference").set_value(("ok.hdf5", h5.read_bytes(),
                                                     "application/x-hdf5")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("rsatoolbox HDF5 RDM" in c.value and "dissimilarity" in c.value for c in at.caption)

    # .pkl is not an accepted type: the browser does not offer it, and a client that sends
    # one anyway is refused by Streamlit's server before the page's code runs
    at.file_uploader(key="cmp_reference").set_value(("ref.pkl", data, "application/octet-stream"))
    at.run()
    assert [e.value for e in at.exception] == [
        "Invalid file extension: `.pkl`. Allowed: ['.npy', '.csv', '.txt', '.hdf5', '.h5']"]
    assert not marker.exists()


# --------------------------------------------------------------------------- rsatoolbox HDF5


def test_rsatoolbox_hdf5_round_trip_without_rsatoolbox(tmp_path, rng):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    n = 9
    names = [f"img_{k}" for k in range(n)]
    rdms = rsatoolbox.rdm.RDMs(
        rng.random((3, n * (n - 1) // 2)),
        dissimilarity_measure="euclidean",
        pattern_descriptors={"image": names},
    )
    path = tmp_path / "rdms.h5"
    rdms.save(str(path), file_type="hdf5")
    for index in range(3):
        for ref in (load_reference(path, index=index),
                    load_reference(path.read_bytes(), "rdms.h5", index=index)):
            np.testing.assert_array_equal(ref.matrix, rdms.get_matrices()[index])
            assert ref.names == names and ref.kind == "dissimilarity"
    with pytest.raises(AnalysisError, match="holds 3 RDMs; index 3"):
        load_reference(path, index=3)
    # the reader never imports rsatoolbox
    code = ("import sys; from semrsm.analysis import load_reference; "
            f"load_reference({str(path)!r}); assert 'rsatoolbox' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_hdf5_links_to_other_files_are_never_followed(tmp_path):
    """External links, external storage and virtual datasets would read server files."""
    import h5py

    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["dissimilarities"] = np.arange(3.0)[None]
    raw = tmp_path / "raw.bin"
    np.arange(3.0).tofile(raw)
    cases = {
        "link.h5": lambda f: f.__setitem__("dissimilarities",
                                           h5py.ExternalLink(str(secret), "/dissimilarities")),
        "storage.h5": lambda f: f.create_dataset("dissimilarities", shape=(3,), dtype="<f8",
                                                 external=[(str(raw), 0, 24)]),
        "virtual.h5": lambda f: f.create_virtual_dataset(
            "dissimilarities", _layout(h5py, secret)),
    }
    for name, build in cases.items():
        with h5py.File(tmp_path / name, "w") as f:
            build(f)
        with pytest.raises(AnalysisError, match="no 'dissimilarities' dataset stored in the file"):
            load_reference(tmp_path / name)


def _layout(h5py, secret):
    layout = h5py.VirtualLayout(shape=(1, 3), dtype="<f8")
    layout[:] = h5py.VirtualSource(str(secret), "dissimilarities", shape=(1, 3))
    return layout


def test_h5py_is_imported_only_to_read_hdf5():
    code = ("import sys, numpy as np, io; import semrsm, semrsm.analysis; "
            "from semrsm.analysis import load_reference; b = io.BytesIO(); "
            "np.save(b, np.eye(3)); load_reference(b.getvalue(), 'r.npy'); "
            "assert 'h5py' not in sys.modules, 'h5py imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --------------------------------------------------------------------------- memory bounds


def _npy_header_only(path: pathlib.Path, n: int) -> None:
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (n, n)})


@pytest.mark.parametrize("n,gib", [(223_750, 373), (200_000, 298)])
def test_npy_header_claiming_hundreds_of_gib_is_refused_from_the_header(tmp_path, n, gib):
    path = tmp_path / "huge.npy"
    _npy_header_only(path, n)
    assert path.stat().st_size == 128
    grow, err = peak_growth(f"load_reference({str(path)!r})",
                            setup="from semrsm.analysis import load_reference")
    assert err is not None and err.startswith("AnalysisError")
    assert f"{n:,} images, {gib}.0 GiB" in err and f"limited to {MAX_REFERENCE_IMAGES:,}" in err
    assert grow < REFUSAL_MB, f"+{grow:.0f} MB"


def test_small_gzip_hdf5_claiming_12000_images_is_refused_from_metadata(tmp_path):
    """~0.7 MB of gzip chunks that decompress to 576 MB; rsatoolbox's reader: +2.7 GB."""
    import h5py

    n, chunk = 12_000, 2**20
    pairs = n * (n - 1) // 2
    path = tmp_path / "claim.h5"
    packed = zlib.compress(np.zeros(chunk).tobytes(), 9)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("dissimilarities", shape=(1, pairs), dtype="<f8",
                             chunks=(1, chunk), compression="gzip")
        for off in range(0, pairs, chunk):
            d.id.write_direct_chunk((0, off), packed)
        f.create_group("pattern_descriptors")["index"] = np.arange(n)
    assert path.stat().st_size < 1_000_000
    grow, err = peak_growth(f"load_reference({str(path)!r})",
                            setup="import h5py\nfrom semrsm.analysis import load_reference")
    assert err is not None and "12,000 images" in err and "SEMRSM_MAX_REFERENCE_IMAGES" in err
    assert grow < REFUSAL_MB, f"+{grow:.0f} MB"


def test_csv_over_the_byte_limit_is_refused_before_reading(tmp_path):
    """A 144 MiB numeric CSV (before the fix: +2.0 GB, then a shape error)."""
    path = tmp_path / "big.csv"
    line = (",".join(["0.1234567"] * 6000) + "\n").encode()
    with path.open("wb") as f:
        for _ in range(144 * 2**20 // len(line) + 1):
            f.write(line)
    assert path.stat().st_size > MAX_REFERENCE_TEXT_BYTES
    grow, err = peak_growth(f"load_reference({str(path)!r})",
                            setup="from semrsm.analysis import load_reference")
    assert err is not None and "144 MiB" in err and "limited to 64 MiB" in err and ".npy" in err
    assert grow < REFUSAL_MB, f"+{grow:.0f} MB"


def test_csv_is_parsed_within_a_few_times_its_size(tmp_path):
    """A 1500 × 1500 CSV (20 MB): matrix 18 MB. Before the fix: +300 MB (lists of str)."""
    rng = np.random.default_rng(0)
    m = rng.random((1500, 1500))
    path = tmp_path / "ok.csv"
    np.savetxt(path, m, fmt="%.6f", delimiter=",")
    size_mb = path.stat().st_size / 2**20
    grow, err = peak_growth(f"r = load_reference({str(path)!r}); assert r.matrix.shape == (1500, 1500)",
                            setup="from semrsm.analysis import load_reference")
    assert err is None, err
    assert grow < 150, f"+{grow:.0f} MB for a {size_mb:.0f} MB file"


def test_csv_too_short_for_its_first_row_is_refused_before_allocating():
    data = (",".join(["1"] * 9000) + "\n1,2\n").encode()  # 18 KB claiming 9,000 × 9,000
    with pytest.raises(AnalysisError, match="too short for 9,000 rows"):
        load_reference(data, "wide.csv")


# --------------------------------------------------------------------------- messages


def _npy(m) -> bytes:
    buf = io.BytesIO()
    np.save(buf, m)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["empty.npy", "empty.csv", "empty.txt", "empty.h5"])
def test_zero_byte_files_are_a_message(name, tmp_path):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(AnalysisError, match=r"is empty \(0 bytes\)"):
        load_reference(tmp_path / name)


@pytest.mark.parametrize("data", [b"\x00\x01\x02binary\x00", bytes(range(256)),
                                  b"PK\x03\x04\x00\x00", b"\xff\xfe1,2\xe9"],
                         ids=["nul", "all-bytes", "zip", "not-utf8"])
def test_binary_file_named_csv_is_a_message(data):
    with pytest.raises(AnalysisError, match="binary file, not text|not UTF-8 text"):
        load_reference(data, "ref.csv")


def test_complex_numbers_are_refused_in_every_format(tmp_path):
    m = np.eye(4) + 0.5j
    np.savetxt(tmp_path / "c.txt", m)  # " (1.0e+00+5.0e-01j) ..."
    np.savetxt(tmp_path / "c.csv", m, delimiter=",")
    (tmp_path / "c.npy").write_bytes(_npy(m))
    import h5py

    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["dissimilarities"] = np.ones((1, 6), dtype=complex)
    for name in ("c.txt", "c.csv", "c.npy", "c.h5"):
        with pytest.raises(AnalysisError, match="complex numbers.*must be real"):
            load_reference(tmp_path / name)


def test_whitespace_and_tab_separated_txt_are_read(tmp_path, rng):
    m = np.corrcoef(rng.random((6, 3)))
    np.savetxt(tmp_path / "space.txt", m)
    np.savetxt(tmp_path / "tab.txt", m, delimiter="\t")
    (tmp_path / "aligned.txt").write_text(
        "\n".join("   ".join(f"{v:>12.9f}" for v in row) for row in m) + "\n\n")
    for name in ("space.txt", "tab.txt", "aligned.txt"):
        np.testing.assert_allclose(load_reference(tmp_path / name).matrix, m, atol=1e-8)
    (tmp_path / "named.txt").write_text("image " + " ".join(f"im{k}" for k in range(6)) + "\n" + (
        "\n".join(f"im{k} " + " ".join(f"{v:.17g}" for v in row) for k, row in enumerate(m))))
    assert load_reference(tmp_path / "named.txt").names == [f"im{k}" for k in range(6)]


def test_damaged_npy_files_are_a_message(tmp_path):
    good = _npy(np.eye(5))
    cases = {
        "truncated": good[:-8],
        "not npy": b"hello, this is not numpy",
        "text dtype": _npy(np.array([["a"] * 3] * 3)),
        "not square": _npy(np.zeros((3, 4))),
        "records": _npy(np.zeros((3, 3), dtype=[("a", "<f8")])),
    }
    expect = {"truncated": "truncated", "not npy": "not a .npy file",
              "text dtype": "not plain numbers", "not square": "N×N", "records": "not plain numbers"}
    for case, data in cases.items():
        with pytest.raises(AnalysisError, match=expect[case]):
            load_reference(data, "x.npy")


def test_the_image_limit_is_documented_and_overridable(monkeypatch, tmp_path):
    m = np.corrcoef(np.random.default_rng(0).random((6, 3)))
    data = _npy(m)
    assert max_reference_images() == MAX_REFERENCE_IMAGES == 10_000
    monkeypatch.setenv(MAX_REFERENCE_IMAGES_ENV, "5")
    with pytest.raises(AnalysisError, match="6 images.*limited to 5 images"):
        load_reference(data, "r.npy")
    monkeypatch.setenv(MAX_REFERENCE_IMAGES_ENV, "20_000")
    assert max_reference_images() == 20_000
    assert load_reference(data, "r.npy").matrix.shape == (6, 6)
    monkeypatch.setenv(MAX_REFERENCE_IMAGES_ENV, "lots")
    with pytest.warns(UserWarning, match="SEMRSM_MAX_REFERENCE_IMAGES='lots'"):
        assert max_reference_images() == MAX_REFERENCE_IMAGES


def test_missing_paths_and_folders_are_a_message(tmp_path):
    with pytest.raises(AnalysisError, match="does not exist or is not a regular file"):
        load_reference(tmp_path / "nope.npy")
    with pytest.raises(AnalysisError, match="does not exist or is not a regular file"):
        load_reference(tmp_path)
    with pytest.raises(AnalysisError, match="give file_name"):
        load_reference(b"abc")
    if os.name == "posix":
        os.mkfifo(tmp_path / "fifo.npy")  # would block a reader forever
        with pytest.raises(AnalysisError, match="not a regular file"):
            load_reference(tmp_path / "fifo.npy")


def test_damaged_hdf5_data_is_a_message(tmp_path):
    import h5py

    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        d = f.create_dataset("dissimilarities", shape=(1, 10), dtype="<f8", chunks=(1, 10),
                             compression="gzip")
        d.id.write_direct_chunk((0, 0), b"not deflate data at all")
    with pytest.raises(AnalysisError, match="could not be read"):
        load_reference(path)
