"""The SIMD row scan of the exact auction against a plain loop (values and column, bit for bit)."""

import numpy as np
import pytest

from semrsm.matching.row_scan import row_top2


def _reference(a: np.ndarray, i: int, prices: np.ndarray) -> tuple[float, float, int]:
    v = a[i].astype(np.float64) - prices
    j1 = int(np.argmax(v))  # the lowest column among equal bests
    rest = np.delete(v, j1)
    return float(v[j1]), float(rest.max()) if len(rest) else -np.inf, j1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 31, 32, 33, 40, 49, 63, 64, 65, 100, 196])
def test_row_top2_equals_a_plain_scan(n: int, dtype: type) -> None:
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n)).astype(dtype)
    prices = rng.random(n) * 0.5
    for i in range(n):
        assert row_top2(a, i, prices) == _reference(a, i, prices)


@pytest.mark.parametrize("n", [5, 40, 97])
def test_row_top2_ties_keep_the_lowest_column(n: int) -> None:
    # integer costs and prices: many exact ties, in every lane and in the scalar tail
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, (n, n)).astype(np.float64)
    prices = rng.integers(0, 2, n).astype(np.float64)
    for i in range(n):
        b1, b2, j1 = row_top2(a, i, prices)
        assert (b1, b2, j1) == _reference(a, i, prices)
    const = np.ones((n, n))
    assert row_top2(const, 0, np.zeros(n)) == (1.0, 1.0, 0)


def test_row_top2_reads_only_its_row() -> None:
    # a best value in the neighbouring rows must not leak into row 1 (row offsets in bytes)
    for dtype in (np.float32, np.float64):
        a = np.zeros((3, 70), dtype=dtype)
        a[0, :] = 9
        a[2, :] = 9
        a[1, 69] = 1  # in the scalar tail
        a[1, 3] = 0.5
        assert row_top2(a, 1, np.zeros(70)) == (1.0, 0.5, 69)
