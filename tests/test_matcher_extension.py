"""Adding a matcher is one registry entry: a toy matcher registered here (and nowhere
else) shows up in the command line, the sidebar, links, estimates and the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from semrsm.matching.registry import MatcherSpec, Param, register_matcher, unregister_matcher

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")

pytestmark = pytest.mark.timeout(900)


def _reverse(costs: np.ndarray, row_norms, col_norms, *, shift: int) -> np.ndarray:
    """Token i of the first image to token S-1-i (+ shift, cyclic) of the second."""
    b, s, _ = costs.shape
    perm = (s - 1 - np.arange(s, dtype=np.int64) + shift) % s
    return np.broadcast_to(perm, (b, s)).copy()


REVERSE = MatcherSpec(
    "reverse", "reverse", "token i to token S-1-i (a toy)",
    (Param("shift", 0, int, 0, doc="cyclic shift of the reversed order", label="Shift",
           ui_low=0, ui_high=64),),
    cpu=_reverse,
    hint="toy",
    cpu_rates={16: 50000.0, 1024: 500.0},
)


@pytest.fixture()
def reverse():
    register_matcher(REVERSE)
    yield REVERSE
    unregister_matcher("reverse")


def test_the_registry_imports_neither_torch_nor_numba():
    code = ("import sys, semrsm.matching.registry\n"
            "assert 'torch' not in sys.modules and 'numba' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_registering_checks_the_spec(reverse):
    with pytest.raises(ValueError, match="registered already"):
        register_matcher(REVERSE)
    with pytest.raises(ValueError, match="letters"):
        register_matcher(MatcherSpec("no way", "x", "x", cpu=_reverse))


def test_the_command_line_offers_it(reverse, tmp_path, capsys):
    from semrsm.__main__ import main

    with pytest.raises(SystemExit):
        main(["rsm", "--help"])
    text = capsys.readouterr().out
    assert "reverse" in text and "--shift" in text
    tokens = np.abs(np.random.default_rng(0).standard_normal((4, 6, 3))).astype(np.float32)
    np.save(tmp_path / "t.npy", tokens)
    out = tmp_path / "out.npz"
    assert main(["rsm", "--tokens", str(tmp_path / "t.npy"), "--matcher", "reverse",
                 "--shift", "3", "--device", "cpu", "--out", str(out)]) == 0
    meta = json.loads(str(np.load(out)["meta"]))
    assert meta["matcher"] == "reverse" and meta["matcher_params"] == {"shift": 3}


def test_the_library_computes_with_it(reverse):
    import semrsm

    rng = np.random.default_rng(1)
    tokens = np.abs(rng.standard_normal((3, 5, 4)))
    res = semrsm.semantic_rsm(tokens, kernel="linear", matcher="reverse", shift=1,
                              device="cpu", return_matchings=True, return_result=True)
    want = (5 - 1 - np.arange(5) + 1) % 5
    assert np.array_equal(res.perms[0], want)
    inner = np.einsum("sc,sc->", tokens[0], tokens[1][want])
    assert np.isclose(res.rsm[0, 1], inner)


def test_links_carry_it(reverse):
    from semrsm.explorer.links import params_to_state, state_to_params

    state, problems = params_to_state({"matcher": "reverse", "shift": "3"})
    assert problems == []
    assert state == {"sb_matcher": "reverse", "sb_shift": 3}
    params, _ = state_to_params(state)
    assert params == {"matcher": "reverse", "shift": "3"}
    _, problems = params_to_state({"matcher": "reverse", "shift": "65"})
    assert problems and "0..64" in problems[0]


def test_estimates_know_it(reverse):
    from semrsm.explorer.estimate import estimate_seconds, table_rate

    assert table_rate("reverse", "cpu", 16) == 50000.0
    est = estimate_seconds(10, 16, matcher="reverse")
    assert est["match"] == pytest.approx(45 / 50000.0)


@pytest.mark.usefixtures("app_cache_dir")
def test_the_sidebar_offers_it(reverse):
    at = AppTest.from_file(APP, default_timeout=240)
    at.session_state["sb_shapes_n"] = 8
    at.run()
    box = at.selectbox(key="sb_matcher")
    assert "reverse (toy)" in box.options  # its label, with its hint
    box.select("reverse").run()
    assert not at.exception, [e.value for e in at.exception]
    shift = at.number_input(key="sb_shift")
    assert shift.label == "Shift" and shift.value == 0


def _one(value):
    """A query parameter as AppTest gives it (a string, or a list of one)."""
    return value[-1] if isinstance(value, list) else value


@pytest.mark.usefixtures("app_cache_dir")
def test_the_app_reads_and_writes_its_link(reverse):
    at = AppTest.from_file(APP, default_timeout=240)
    for k, v in {"images": "shapes:8", "matcher": "reverse", "shift": "3"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["sb_matcher"] == "reverse"
    assert at.number_input(key="sb_shift").value == 3
    assert _one(at.query_params["matcher"]) == "reverse"
    assert _one(at.query_params["shift"]) == "3"
