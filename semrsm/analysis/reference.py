"""A reference RSM/RDM (:class:`Reference`) and :func:`load_reference`, which reads one
through :mod:`semrsm.analysis.reference_files` (the only reader of reference files: no
pickles, size bounded before reading) and puts it in an image order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semrsm.analysis._checks import AnalysisError, _check_rsm
from semrsm.analysis.reference_files import (
    REFERENCE_SUFFIXES,
    read_reference_file,
    reference_source,
)

__all__ = ["REFERENCE_SUFFIXES", "Reference", "load_reference"]


@dataclass
class Reference:
    """A reference RSM or RDM read by :func:`load_reference`.

    Attributes
    ----------
    matrix : ndarray (N, N) float64, as stored.
    kind : "similarity" or "dissimilarity".
    names : list of str or None, the images' names when the file has them.
    source : str, where it came from.
    """

    matrix: np.ndarray
    kind: str
    names: list[str] | None
    source: str

    @property
    def similarity(self) -> np.ndarray:
        """The matrix as a similarity: an RDM is negated (every statistic here then keeps
        its sign convention: higher = the RSM agrees with the reference)."""
        return -self.matrix if self.kind == "dissimilarity" else self.matrix

    def aligned(self, names: Sequence[str]) -> np.ndarray:
        """The similarity in the order of ``names`` (the file's own order without names).

        Raises
        ------
        AnalysisError (ValueError)
            A size mismatch, or names in the file that are not the images'.
        """
        s = self.similarity
        n = len(names)
        if s.shape[0] != n:
            raise AnalysisError(
                f"the reference is {s.shape[0]}×{s.shape[0]} but there are {n} images; "
                "give an N×N matrix in the image order of this set"
            )
        if self.names is None or list(self.names) == list(names):
            return s
        pos = {nm: k for k, nm in enumerate(self.names)}
        missing = [nm for nm in names if nm not in pos]
        if missing or len(pos) != n:
            raise AnalysisError(
                f"the reference names its images, but {len(missing)} of this set's images are "
                f"not among them (e.g. {missing[:3]}); use the same images, or a file without names"
            )
        idx = np.array([pos[nm] for nm in names])
        return s[np.ix_(idx, idx)]


def _detect_kind(m: np.ndarray, kind: str) -> str:
    if kind in ("similarity", "dissimilarity"):
        return kind
    if kind != "auto":
        raise AnalysisError(f"kind: {kind!r} is not 'auto', 'similarity' or 'dissimilarity'")
    # an RDM has a zero diagonal; an RSM has each image's self-similarity there
    return "dissimilarity" if np.allclose(np.diag(m), 0.0) else "similarity"


def load_reference(
    source: str | Path | bytes,
    file_name: str | None = None,
    *,
    kind: str = "auto",
    index: int = 0,
) -> Reference:
    """Read a reference RSM/RDM without running code and within a memory bound.

    Formats: ``.npy`` (an (N, N) or (1, N, N) array of real numbers; read with
    ``allow_pickle=False``), ``.csv``/``.txt`` (N×N numbers separated by commas or
    whitespace, optionally a header row and a first column of image names, as semrsm's
    own CSV export), or rsatoolbox's ``RDMs.save(path, file_type='hdf5')`` file
    (``.hdf5``/``.h5``, read with h5py; rsatoolbox is not needed). Pickles (``.pkl``, or
    pickle bytes under any name) are refused: reading one can run code. The size is
    checked before the data is read: at most
    :func:`~semrsm.analysis.reference_files.max_reference_images` images (10,000, or
    ``$SEMRSM_MAX_REFERENCE_IMAGES``) and, for text, 64 MiB.

    Parameters
    ----------
    source : a path, or the file's bytes (then ``file_name`` gives the format).
    file_name : the name of the file, for its suffix (default: ``source``'s name).
    kind : "auto" (a zero diagonal means an RDM), "similarity" or "dissimilarity".
        rsatoolbox files always hold dissimilarities.
    index : which RDM of an rsatoolbox file holding several.

    Returns
    -------
    Reference
        ``matrix`` (N, N) float64, finite, N ≥ 3.

    Raises
    ------
    AnalysisError (ValueError)
        A pickle, an unknown suffix; an empty, damaged, binary or truncated file; complex
        or non-numeric values; a matrix that is not N×N, holds NaN/inf or is over the size
        limit. The message says what to do.
    """
    src = reference_source(source, file_name)
    m, names, desc, is_rdm = read_reference_file(src, index)
    if is_rdm:
        kind = "dissimilarity"
    m = _check_rsm(m, src.name, min_n=3)
    if names is not None and len(names) != m.shape[0]:
        names = None
    return Reference(m, _detect_kind(m, kind), names, f"{src.name} ({desc})")
