"""Reading reference RSM/RDM files without running code and within a memory bound.

A reference file comes from a user (an upload on the Compare page, ``--reference`` of the
command line, :func:`semrsm.analysis.load_reference`), so it is read as hostile input:

* **Nothing is unpickled.** ``.pkl``/``.pickle`` files are refused, and so are pickle bytes
  under any other name; ``.npy`` is read from its header with the object dtype refused,
  rsatoolbox's HDF5 file with h5py directly (numbers and fixed-length names only).
* **Memory is bounded before reading.** A matrix over :func:`max_reference_images` images
  (default :data:`MAX_REFERENCE_IMAGES`, environment variable
  ``SEMRSM_MAX_REFERENCE_IMAGES``) is refused from the ``.npy`` header or the HDF5
  metadata, without allocating it; a text file over :data:`MAX_REFERENCE_TEXT_BYTES` is
  refused from its size, and a smaller one is parsed row by row into a matrix allocated
  once. Reading an accepted file costs about its N × N float64 matrix.

Every failure is an :class:`~semrsm.analysis.AnalysisError` that says what is wrong and
what to do. h5py is imported only when an HDF5 file is read.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from semrsm.analysis._checks import AnalysisError

__all__ = [
    "MAX_REFERENCE_IMAGES",
    "MAX_REFERENCE_IMAGES_ENV",
    "MAX_REFERENCE_TEXT_BYTES",
    "REFERENCE_SUFFIXES",
    "ReferenceSource",
    "max_reference_images",
    "read_reference_file",
    "reference_source",
]

#: Default largest reference, in images: an N × N float64 matrix of 10,000 images is 800 MB.
MAX_REFERENCE_IMAGES = 10_000
#: Environment variable that overrides :data:`MAX_REFERENCE_IMAGES` (a whole number).
MAX_REFERENCE_IMAGES_ENV = "SEMRSM_MAX_REFERENCE_IMAGES"
#: Largest ``.csv``/``.txt`` reference (64 MiB): text is slow to parse; larger matrices
#: belong in ``.npy`` or HDF5.
MAX_REFERENCE_TEXT_BYTES = 64 * 2**20

REFERENCE_SUFFIXES = (".npy", ".csv", ".txt", ".hdf5", ".h5")
PICKLE_SUFFIXES = (".pkl", ".pickle")
_TEXT_SUFFIXES = (".csv", ".txt")

# rows are converted in blocks of about this size, so a float32 file never needs a
# float32 copy of the whole matrix next to the float64 one
_BLOCK_BYTES = 16 * 2**20
# HDF5 decompresses whole chunks: larger chunks could cost memory beyond the matrix
_MAX_CHUNK_BYTES = 64 * 2**20
_MAX_NAME_BYTES = 1024
_NAME_KEYS = ("image", "name", "names", "stimulus", "conds")

_SAVE_ADVICE = (
    "save the matrix with np.save(path, m) (.npy) or as .csv, or an rsatoolbox RDMs object "
    "with rdms.save(path, file_type='hdf5')"
)


def max_reference_images() -> int:
    """The largest reference accepted, in images: ``$SEMRSM_MAX_REFERENCE_IMAGES`` or
    :data:`MAX_REFERENCE_IMAGES`.

    A value that is not a whole number of at least 3 gives a warning naming the variable,
    and the default is used (a typo never lifts the bound).
    """
    raw = os.environ.get(MAX_REFERENCE_IMAGES_ENV, "").strip()
    if not raw:
        return MAX_REFERENCE_IMAGES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 3:
        warnings.warn(
            f"{MAX_REFERENCE_IMAGES_ENV}={raw!r} is not a number of images (a whole number of "
            f"at least 3, e.g. 20000); the default {MAX_REFERENCE_IMAGES:,} is used",
            stacklevel=2,
        )
        return MAX_REFERENCE_IMAGES
    return value


# --------------------------------------------------------------------------- the source


@dataclass(frozen=True)
class ReferenceSource:
    """A reference file: a path on disk or bytes in memory, never both.

    Attributes
    ----------
    name : str, the file's name (its suffix picks the format; messages use it).
    size : int, bytes.
    path : Path or None.
    data : bytes or None.
    """

    name: str
    size: int
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()

    def open(self) -> BinaryIO:
        """A binary file object; bytes are wrapped without a copy."""
        return self.path.open("rb") if self.path is not None else io.BytesIO(self.data)

    def head(self, n: int) -> bytes:
        """The first ``n`` bytes."""
        if self.data is not None:
            return self.data[:n]
        with self.open() as f:
            return f.read(n)

    def read_all(self) -> bytes:
        """The whole file; callers check :attr:`size` first."""
        if self.data is not None:
            return self.data
        with self.open() as f:
            return f.read()

    def array(self, offset: int, dtype: np.dtype, count: int) -> np.ndarray:
        """``count`` items of ``dtype`` at byte ``offset`` (a view for bytes, read for files).

        Raises
        ------
        AnalysisError
            The file ends before ``count`` items.
        """
        if self.data is not None:
            if offset + count * dtype.itemsize > len(self.data):
                raise _truncated(self.name)
            return np.frombuffer(self.data, dtype=dtype, count=count, offset=offset)
        with self.open() as f:
            f.seek(offset)
            out = np.fromfile(f, dtype=dtype, count=count)
        if out.size != count:
            raise _truncated(self.name)
        return out


def _truncated(name: str) -> AnalysisError:
    return AnalysisError(f"{name} is truncated: it ends before the matrix its header describes; "
                         "save it again")


def reference_source(source: str | Path | bytes | bytearray, file_name: str | None = None
                     ) -> ReferenceSource:
    """Wrap a path or bytes as a :class:`ReferenceSource`; nothing is read yet.

    Raises
    ------
    AnalysisError
        Bytes without ``file_name``; a path that is not a readable regular file.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not file_name:
            raise AnalysisError("give file_name with the bytes of a reference file")
        data = bytes(source)
        return ReferenceSource(Path(file_name).name, len(data), data=data)
    path = Path(source)
    try:
        if not path.is_file():  # follows links; folders, devices and FIFOs are not files
            raise AnalysisError(f"{path} does not exist or is not a regular file")
        size = path.stat().st_size
    except OSError as exc:
        raise AnalysisError(f"{path} cannot be read: {exc.strerror or exc}") from None
    return ReferenceSource(Path(file_name).name if file_name else path.name, size, path=path)


# --------------------------------------------------------------------------- shared checks


def _refuse_pickle_or_unknown(src: ReferenceSource) -> None:
    """Refuse pickles (by suffix or by content), unknown suffixes and empty files."""
    if src.suffix in PICKLE_SUFFIXES:
        raise AnalysisError(
            f"{src.name}: pickle files are refused, because reading a pickle can run any code "
            f"it contains; {_SAVE_ADVICE}"
        )
    if src.suffix not in REFERENCE_SUFFIXES:
        raise AnalysisError(
            f"{src.name}: unknown format {src.suffix!r}; give .npy, .csv or .txt (N×N in the "
            "image order) or rsatoolbox's HDF5 file (.hdf5/.h5)"
        )
    if src.size == 0:
        raise AnalysisError(f"{src.name} is empty (0 bytes); {_SAVE_ADVICE}")
    head = src.head(2)
    # protocol 2+ pickles start with the PROTO opcode; no .npy, HDF5 or UTF-8 text does
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise AnalysisError(
            f"{src.name} holds a Python pickle, not a {src.suffix} file; pickles are refused "
            f"because reading one can run any code it contains; {_SAVE_ADVICE}"
        )


def _check_dtype(dtype: np.dtype, name: str) -> None:
    """Only real numbers: complex, text, objects and records are refused."""
    if dtype.kind == "c":
        raise AnalysisError(f"{name} holds complex numbers ({dtype}); a reference must be real: "
                            "save np.real(m) or np.abs(m), whichever the values mean")
    if dtype.kind not in "biuf" or dtype.hasobject or dtype.shape:
        raise AnalysisError(f"{name} holds {dtype} values, not plain numbers; {_SAVE_ADVICE} "
                            "from a float array")


def _check_size(n: int, name: str) -> None:
    """Refuse more images than :func:`max_reference_images`, before anything is allocated."""
    limit = max_reference_images()
    if n > limit:
        raise AnalysisError(
            f"{name} holds a {n:,}×{n:,} matrix ({n:,} images, {n * n * 8 / 2**30:.1f} GiB as "
            f"float64); references are limited to {limit:,} images. Use a reference of the "
            f"images you compare, or raise {MAX_REFERENCE_IMAGES_ENV} if this machine has the "
            "memory"
        )


def _square_side(shape: tuple[int, ...], name: str) -> int:
    """N of an (N, N) or (1, N, N) shape."""
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 2 or shape[0] != shape[1]:
        raise AnalysisError(f"{name}: expected an N×N matrix (or 1×N×N), got shape {shape}")
    return int(shape[0])


# --------------------------------------------------------------------------- .npy


def _npy_header(src: ReferenceSource) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and data offset from a ``.npy`` header; no data read."""
    fmt = np.lib.format
    with src.open() as f:
        try:
            version = fmt.read_magic(f)
        except ValueError:
            raise AnalysisError(
                f"{src.name} is not a .npy file (it does not start with numpy's header); "
                f"{_SAVE_ADVICE}"
            ) from None
        readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
        if version not in readers:  # 3.0 is only written for records with unicode field names
            raise AnalysisError(f"{src.name}: .npy version {version} is not read; save a "
                                "plain numeric array with np.save")
        try:
            shape, fortran, dtype = readers[version](f)
        except (ValueError, SyntaxError, TypeError) as exc:
            raise AnalysisError(f"{src.name} has a damaged .npy header ({exc}); "
                                f"{_SAVE_ADVICE}") from None
        return tuple(shape), bool(fortran), np.dtype(dtype), f.tell()


def _read_npy(src: ReferenceSource) -> np.ndarray:
    """An (N, N) float64 matrix from a ``.npy``, checked from its header before reading."""
    shape, fortran, dtype, offset = _npy_header(src)
    _check_dtype(dtype, src.name)
    n = _square_side(shape, src.name)
    _check_size(n, src.name)
    if offset + n * n * dtype.itemsize > src.size:
        raise _truncated(src.name)
    out = np.empty((n, n), dtype=np.float64)
    rows = out.T if fortran else out  # Fortran order stores the transposed rows
    step = max(1, _BLOCK_BYTES // max(1, n * dtype.itemsize))
    for start in range(0, n, step):
        k = min(step, n - start)
        block = src.array(offset + start * n * dtype.itemsize, dtype, k * n)
        rows[start:start + k] = block.reshape(k, n)
    return out


# --------------------------------------------------------------------------- HDF5


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise AnalysisError("reading HDF5 files needs h5py (pip install h5py); or save the "
                            "matrix as .npy/.csv: rdms.get_matrices()[0]") from None
    return h5py


def _member(h5py: Any, group: Any, key: str, kind: type) -> Any:
    """``group[key]`` when it is an object of ``kind`` stored in this file, else None.

    Links to other files (external links), data kept in other files (external storage)
    and virtual datasets are never followed: they would read server files.
    """
    # the low-level link calls look at the link itself; `key in group` and `group.get`
    # would resolve it, opening the file an external link names
    link = key.encode()
    if not group.id.links.exists(link) or group.id.links.get_info(link).type != h5py.h5l.TYPE_HARD:
        return None
    obj = group[key]
    if not isinstance(obj, kind):
        return None
    if kind is h5py.Dataset and (obj.is_virtual or obj.external):
        return None
    return obj


def _check_chunks(dset: Any, name: str) -> None:
    if dset.chunks is not None:
        nbytes = math.prod(dset.chunks) * dset.dtype.itemsize
        if nbytes > _MAX_CHUNK_BYTES:
            raise AnalysisError(
                f"{name} stores {dset.name} in chunks of {nbytes / 2**20:,.0f} MiB (at most "
                f"{_MAX_CHUNK_BYTES // 2**20} MiB are read); save it with rdms.save(path, "
                "file_type='hdf5')"
            )


def _side_from_pairs(pairs: int, name: str) -> int:
    """N such that N(N−1)/2 = ``pairs`` (the length of an upper triangle)."""
    n = (1 + math.isqrt(1 + 8 * pairs)) // 2
    if n * (n - 1) // 2 != pairs:
        raise AnalysisError(f"{name}: {pairs:,} dissimilarities are not the upper triangle of "
                            "any N×N matrix (N(N−1)/2 values); the file is damaged")
    return n


def _matrix_from_triangle(dset: Any, row: int | None, n: int) -> np.ndarray:
    """Symmetric (N, N) float64 with a zero diagonal from the upper triangle (row-major,
    ``i < j``, as rsatoolbox stores it), read in blocks of rows."""
    out = np.zeros((n, n), dtype=np.float64)
    i, start = 0, 0
    while i < n - 1:
        # rows i..j-1 of the triangle hold about _BLOCK_BYTES
        j, stop = i, start
        while j < n - 1 and (j == i or (stop - start) * 8 < _BLOCK_BYTES):
            stop += n - 1 - j
            j += 1
        block = np.asarray(dset[start:stop] if row is None else dset[row, start:stop],
                           dtype=np.float64)
        pos = 0
        for r in range(i, j):
            seg = block[pos:pos + n - 1 - r]
            out[r, r + 1:] = seg
            out[r + 1:, r] = seg
            pos += n - 1 - r
        i, start = j, stop
    return out


def _pattern_names(h5py: Any, f: Any, n: int) -> list[str] | None:
    """Image names from rsatoolbox's pattern descriptors: fixed-length text or numbers of
    length N; anything else (variable-length strings, groups) is ignored, not read."""
    group = _member(h5py, f, "pattern_descriptors", h5py.Group)
    if group is None:
        return None
    for key in _NAME_KEYS:
        dset = _member(h5py, group, key, h5py.Dataset)
        if dset is None or dset.shape != (n,):
            continue
        kind, size = dset.dtype.kind, dset.dtype.itemsize
        if kind == "S" and size <= _MAX_NAME_BYTES:
            _check_chunks(dset, key)
            return [v.decode("utf-8", errors="replace") for v in dset[()]]
        if kind in "iuf" and not dset.dtype.shape:
            _check_chunks(dset, key)
            return [str(v) for v in dset[()]]
    return None


def _open_hdf5(h5py: Any, src: ReferenceSource) -> Any:
    try:
        if src.path is not None:
            return h5py.File(src.path, "r")
        return h5py.File(io.BytesIO(src.data), "r")
    except OSError as exc:
        raise AnalysisError(f"{src.name} is not an HDF5 file ({exc}); {_SAVE_ADVICE}") from None


def _rdm_dataset(h5py: Any, f: Any, name: str, index: int) -> tuple[Any, int]:
    """The ``dissimilarities`` dataset and N, checked from metadata only."""
    dset = _member(h5py, f, "dissimilarities", h5py.Dataset)
    if dset is None:
        raise AnalysisError(
            f"{name} has no 'dissimilarities' dataset stored in the file, so it is not an "
            "rsatoolbox RDM file; save one with rdms.save(path, file_type='hdf5')"
        )
    _check_dtype(dset.dtype, name)
    if dset.ndim not in (1, 2):
        raise AnalysisError(f"{name}: 'dissimilarities' has shape {dset.shape}; rsatoolbox "
                            "writes (number of RDMs, N(N−1)/2)")
    n_rdm = 1 if dset.ndim == 1 else dset.shape[0]
    if n_rdm == 0:
        raise AnalysisError(f"{name} holds no RDMs")
    if not 0 <= index < n_rdm:
        raise AnalysisError(f"{name} holds {n_rdm} RDMs; index {index} is out of range "
                            f"(0 to {n_rdm - 1})")
    n = _side_from_pairs(dset.shape[-1], name)
    _check_size(n, name)
    _check_chunks(dset, name)
    return dset, n


def _read_hdf5(src: ReferenceSource, index: int) -> tuple[np.ndarray, list[str] | None]:
    """RDM ``index`` of an rsatoolbox ``RDMs.save(..., file_type='hdf5')`` file.

    The file holds ``dissimilarities`` (n_rdm, N(N−1)/2), the upper triangles, and
    ``pattern_descriptors/<key>`` (N,) for names. Shapes, dtypes and chunking are checked
    from the metadata before any data is read; attributes are not read at all.
    """
    h5py = _import_h5py()
    with _open_hdf5(h5py, src) as f:
        try:
            dset, n = _rdm_dataset(h5py, f, src.name, index)
            matrix = _matrix_from_triangle(dset, None if dset.ndim == 1 else index, n)
            return matrix, _pattern_names(h5py, f, n)
        except (OSError, RuntimeError) as exc:  # damaged data, a filter HDF5 lacks
            raise AnalysisError(f"{src.name} could not be read ({exc}); save it again with "
                                "rdms.save(path, file_type='hdf5')") from None


# --------------------------------------------------------------------------- .csv / .txt


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_complex(cell: str) -> bool:
    """Written by np.savetxt or str() of a complex: "(1+2j)", "1-0.5j"."""
    c = cell.strip().strip("()")
    if "j" not in c.lower() or not any(ch.isdigit() for ch in c):
        return False
    try:
        complex(c)
    except ValueError:
        return False
    return True


def _refuse_complex(cells: list[str], name: str) -> None:
    bad = next((c for c in cells if not _is_number(c) and _is_complex(c)), None)
    if bad is not None:
        raise AnalysisError(f"{name} holds complex numbers (e.g. {bad.strip()!r}); a reference "
                            "must be real: save np.real(m) or np.abs(m), whichever the values mean")


def _text_bytes(src: ReferenceSource) -> bytes:
    """The file's bytes, refused before reading when over the byte limit or binary."""
    if src.size > MAX_REFERENCE_TEXT_BYTES:
        raise AnalysisError(
            f"{src.name} is {src.size / 2**20:,.0f} MiB; text references are limited to "
            f"{MAX_REFERENCE_TEXT_BYTES // 2**20} MiB (parsing text is slow and takes many "
            "times the file's size): save a large matrix as .npy (np.save) or as rsatoolbox's "
            "HDF5 file"
        )
    data = src.read_all()
    if b"\0" in data:
        raise AnalysisError(f"{src.name} is a binary file, not text: give N×N numbers "
                            f"separated by commas or spaces, or {_SAVE_ADVICE}")
    return data


def _lines(data: bytes) -> io.TextIOWrapper:
    """Lines decoded as they are read: the file is never held as one str (a CPython str
    of non-ASCII text takes up to 4 bytes a character)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")


def _text_rows(data: bytes) -> Iterator[list[str]]:
    """Non-blank rows of cells, one at a time: comma-separated when the first non-blank line
    has a comma (quoted names allowed), otherwise separated by whitespace."""
    first = next((ln for ln in _lines(data) if ln.strip()), "")
    rows = csv.reader(_lines(data)) if "," in first else (ln.split() for ln in _lines(data))
    for r in rows:
        if any(c.strip() for c in r):
            yield r


def _parse_row(cells: list[str], row: int, name: str) -> list[float]:
    try:
        return [float(c) for c in cells]
    except ValueError:
        _refuse_complex(cells, name)
        bad = next(c for c in cells if not _is_number(c))
        raise AnalysisError(f"{name}: row {row} holds {bad.strip()[:40]!r}, not a number; "
                            "only the first row and column may hold names") from None


def _read_text(src: ReferenceSource) -> tuple[np.ndarray, list[str] | None]:
    """An (N, N) float64 matrix and names from ``.csv``/``.txt``: N×N numbers, optionally a
    header row of names and a first column of names (semrsm's own CSV export).

    The matrix is allocated once, after its size is checked against the limit and against
    the file's length (every number takes at least two characters), then filled row by row.
    """
    data = _text_bytes(src)
    try:
        return _parse_text(data, src.name)
    except UnicodeDecodeError:
        raise AnalysisError(f"{src.name} is not UTF-8 text: give N×N numbers separated by "
                            f"commas or spaces, or {_SAVE_ADVICE}") from None
    except csv.Error as exc:
        raise AnalysisError(f"{src.name} is not a readable CSV file ({exc})") from None


def _header_and_first(rows: Iterator[list[str]], name: str) -> tuple[list[str] | None, list[str]]:
    """The header row of names (or None) and the first row holding numbers."""
    first = next(rows, None)
    if first is None:
        raise AnalysisError(f"{name} holds no numbers; give an N×N matrix")
    header = None
    if not all(_is_number(c) for c in first):
        _refuse_complex(first, name)
        header, first = first, next(rows, None)
        if first is None:
            raise AnalysisError(f"{name} has a header but no numbers")
    _refuse_complex(first, name)
    return header, first


def _check_text_side(n: int, data: bytes, header: bool, name: str) -> None:
    """Refuse a first row that the limit or the file's length cannot hold as N×N, before
    the matrix is allocated (every number takes at least two bytes with its separator)."""
    if n < 3:
        raise AnalysisError(f"{name}: the first row holds {n} number(s); give an N×N matrix "
                            "of at least 3 images")
    _check_size(n, name)
    lines = data.count(b"\n") + 1 - header
    if lines < n or len(data) < 2 * n * n - 1:
        raise AnalysisError(f"{name}: its first row has {n:,} numbers but the file is too "
                            f"short for {n:,} rows; give an N×N matrix")


def _parse_text(data: bytes, name: str) -> tuple[np.ndarray, list[str] | None]:
    rows = _text_rows(data)
    header, first = _header_and_first(rows, name)
    name_column = not _is_number(first[0])  # semrsm's CSV: a first column of names
    n = len(first) - name_column
    _check_text_side(n, data, header is not None, name)
    m = np.empty((n, n), dtype=np.float64)
    names: list[str] = []
    k = 0
    for r in itertools.chain([first], rows):
        if k == n:
            raise AnalysisError(f"{name} has more than {n:,} rows for {n:,} columns; give an "
                                "N×N matrix")
        if name_column:
            names.append(r[0].strip())
            r = r[1:]
        if len(r) != n:
            raise AnalysisError(f"{name}: row {k + 1} has {len(r):,} numbers, the first "
                                f"{n:,}; give an N×N matrix")
        m[k] = _parse_row(r, k + 1, name)
        k += 1
    if k != n:
        raise AnalysisError(f"{name} has {k:,} rows of {n:,} numbers; give an N×N matrix")
    if header is not None and len(header) == n + name_column:  # the columns' names
        return m, [c.strip() for c in header[name_column:]]
    return m, names or None


# --------------------------------------------------------------------------- entry point


def read_reference_file(src: ReferenceSource, index: int = 0
                        ) -> tuple[np.ndarray, list[str] | None, str, bool]:
    """Read a reference file safely.

    Parameters
    ----------
    src : from :func:`reference_source`.
    index : which RDM of an HDF5 file holding several (ignored for other formats).

    Returns
    -------
    matrix : ndarray (N, N) float64, as stored (not yet checked for NaN/inf).
    names : list of N str, or None when the file does not name its images.
    description : str, the format.
    is_rdm : bool, True when the format always holds dissimilarities (HDF5).

    Raises
    ------
    AnalysisError (ValueError)
        A pickle (by suffix or content), an unknown suffix, an empty, damaged, binary or
        non-UTF-8 file, complex or non-numeric values, a matrix that is not N×N, over
        :func:`max_reference_images` images or a text file over
        :data:`MAX_REFERENCE_TEXT_BYTES`.
    """
    _refuse_pickle_or_unknown(src)
    if src.suffix == ".npy":
        return _read_npy(src), None, "npy", False
    if src.suffix in _TEXT_SUFFIXES:
        matrix, names = _read_text(src)
        return matrix, names, src.suffix[1:], False
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise AnalysisError(f"index: {index!r} is not a whole number ≥ 0")
    matrix, names = _read_hdf5(src, int(index))
    return matrix, names, "rsatoolbox HDF5 RDM", True
