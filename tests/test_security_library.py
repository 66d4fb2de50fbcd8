"""Library and command line under hostile sizes and arguments: memory is bounded *before*
it is allocated, and no traceback reaches a user.

Memory tests measure the peak growth of a fresh interpreter (tests/memory.py) and assert
a stated bound; each ran out of memory (or allocated gigabytes) before the fix. The
measured processes also cap their address space, so a regression fails with MemoryError
instead of taking the machine down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import semrsm
from semrsm import rsm as rsm_module
from semrsm.__main__ import EXIT_GRACE_SECONDS, main
from tests.memory import ROOT, peak_growth

#: peak growth allowed for a refused (or bounded) request, MB
BOUND_MB = 300

#: run first in every measured process: no inherited budget, and an address-space cap
#: (what is mapped now + 4 GiB) as a safety net against a regression
_SETUP = """
import os, resource
os.environ.pop("SEMRSM_MAX_MEMORY", None)
import numpy as np, torch, semrsm
def _cap_address_space():
    with open("/proc/self/status") as f:
        vm = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = vm + 4 * 2**30 if hard == resource.RLIM_INFINITY else min(vm + 4 * 2**30, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
"""


class _Ran(BaseException):
    """Raised by a stand-in for a step that must not run (main() reports Exceptions)."""


def _measure(code: str, setup: str = "") -> tuple[float, str | None]:
    return peak_growth(code, _SETUP + setup + "\n_cap_address_space()\n", timeout=300)


# --------------------------------------------------------------------------- A. memory


def test_sixty_thousand_images_are_refused_before_allocating():
    setup = "t = np.ones((60000, 4, 2), np.float32)\nsemrsm.semantic_rsm(t[:3])\n"
    for call in ("semrsm.semantic_rsm(t)", "semrsm.spatial_rsm(t)",
                 "semrsm.semantic_rsm(t, matcher='greedy', return_matchings=True)"):
        grown, error = _measure(call, setup)
        assert grown < BOUND_MB, (call, grown, error)
        assert error is not None and error.startswith("MemoryLimitError"), error
        # the estimate, the limit and the ways around it
        assert "GiB of memory" in error and "over the limit of" in error, error
        assert "use at most about" in error and "images" in error, error
        assert "SEMRSM_MAX_MEMORY=" in error and "max_memory=" in error, error


def test_sixty_thousand_positions_are_refused_before_allocating():
    setup = "t = np.ones((2, 60000, 2), np.float32)\nsemrsm.semantic_rsm(t[:, :4])\n"
    for call in ("semrsm.semantic_rsm(t)", "semrsm.match_pair(t[0], t[1])"):
        grown, error = _measure(call, setup)
        assert grown < BOUND_MB, (call, grown, error)
        assert error is not None and error.startswith("MemoryLimitError"), error
        assert "positions" in error and "SEMRSM_MAX_MEMORY" in error, error


@pytest.mark.parametrize("shape,call,estimate", [
    # N² dominated: the results, the pair indices and the kernels' temporaries
    ((2500, 4, 2), "semrsm.semantic_rsm(t, kernel=['linear', 'cosine', 'rbf'], matcher='greedy')",
     "semantic_memory(2500, 4, 2, kernels=3, matcher='greedy')"),
    ((2500, 4, 2), "semrsm.spatial_rsm(t, kernel='rbf')", "spatial_memory(2500, 4, 2)"),
    # S² dominated: the cost matrices of the pairs in flight
    ((24, 784, 16), "semrsm.semantic_rsm(t, matcher='greedy')",
     "semantic_memory(24, 784, 16, matcher='greedy')"),
])
def test_the_memory_estimate_is_an_upper_bound_of_the_measured_peak(shape, call, estimate):
    setup = (f"from semrsm.rsm import semantic_memory, spatial_memory\n"
             f"torch.manual_seed(0)\nt = torch.rand{shape}\n"
             "semrsm.semantic_rsm(t[:3], matcher='greedy', kernel=['linear', 'cosine', 'rbf'])\n"
             "semrsm.spatial_rsm(t[:3], kernel='rbf')\n")
    grown, error = _measure(call, setup)
    assert error is None, error
    from semrsm.rsm import semantic_memory, spatial_memory  # noqa: F401 - used by eval

    bound = eval(estimate).total / 2**20  # noqa: S307 - a fixed expression of this test
    assert grown <= bound, f"{call}: measured {grown:.0f} MiB above the estimate {bound:.0f} MiB"


def test_sizes_in_real_use_are_far_below_any_budget():
    from semrsm.rsm import semantic_memory, spatial_memory

    # C up to 2048, S up to 3136, N up to a few thousand; all three kernels (the app)
    for n, s, c in [(4000, 49, 2048), (2000, 784, 256), (1000, 3136, 256), (3000, 196, 768)]:
        for est in (semantic_memory(n, s, c, kernels=3), spatial_memory(n, s, c, kernels=3)):
            assert est.total < 1.5 * 2**30, (n, s, c, est.largest())
    # and the app keeps matchings only up to 128 MB
    assert semantic_memory(1000, 49, 512, kernels=3, return_matchings=True).total < 1.5 * 2**30


def test_gpu_memory_is_checked_against_the_free_gpu_memory(monkeypatch):
    import torch

    from semrsm.memory import MemoryLimitError

    # the check alone (this machine may have no GPU): 100 MiB free on "cuda"
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100 * 2**20, 2**37))
    t = np.ones((3000, 4, 2), np.float32)
    cuda = torch.device("cuda")
    with pytest.raises(MemoryLimitError, match="of GPU memory .* pair indices") as info:
        rsm_module._check_rsm_memory(
            "semantic_rsm", t, cuda, None,
            lambda n, s, c, **kw: rsm_module.semantic_memory(n, s, c, **kw),
            lambda n, s, c, **kw: rsm_module.semantic_device_memory(n, s, c, chunk_pairs=10**6, **kw))
    assert "device='cpu'" in str(info.value) and "chunk_pairs" in str(info.value)
    with pytest.raises(MemoryLimitError, match="Gram matrix"):
        rsm_module._check_rsm_memory(
            "spatial_rsm", np.ones((4000, 4, 2), np.float32), cuda, None,
            lambda n, s, c, **kw: rsm_module.spatial_memory(n, s, c, **kw),
            rsm_module.spatial_device_memory)
    # small inputs pass; on CUDA the host estimate leaves the cost matrices to the GPU
    rsm_module._check_rsm_memory(
        "semantic_rsm", t[:100], cuda, None,
        lambda n, s, c, **kw: rsm_module.semantic_memory(n, s, c, **kw),
        lambda n, s, c, **kw: rsm_module.semantic_device_memory(n, s, c, **kw))
    assert "cost matrices of the pairs in flight" not in rsm_module.semantic_memory(
        100, 784, 64, device_type="cuda").parts


def test_the_budget_is_a_parameter_and_a_variable(monkeypatch):
    from semrsm.memory import MemoryLimitError, memory_budget, parse_memory

    t = np.ones((300, 4, 2), np.float32)
    with pytest.raises(MemoryLimitError, match=r"limit of 1\.0 MiB \(max_memory\)") as info:
        semrsm.semantic_rsm(t, max_memory="1MiB")
    assert info.value.limit == 2**20 and info.value.estimate > 2**20
    monkeypatch.setenv("SEMRSM_MAX_MEMORY", "1M")
    with pytest.raises(MemoryLimitError, match=r"\$SEMRSM_MAX_MEMORY"):
        semrsm.spatial_rsm(t)
    assert semrsm.spatial_rsm(t, max_memory=2**30).shape == (300, 300)  # the call's own wins
    monkeypatch.setenv("SEMRSM_MAX_MEMORY", "lots")
    with pytest.raises(ValueError, match="SEMRSM_MAX_MEMORY: 'lots' is not a memory size"):
        semrsm.spatial_rsm(t)
    monkeypatch.delenv("SEMRSM_MAX_MEMORY")
    limit, source = memory_budget()
    assert 0 < limit <= 8 * 2**30 and "default" in source
    assert parse_memory("1.5GiB") == 3 * 2**29 and parse_memory("500M") == 500 * 10**6
    for bad in ("-1", "0", "1e3", True, float("nan"), "9" * 30):
        with pytest.raises(ValueError):
            parse_memory(bad)


def test_a_huge_bootstrap_is_refused_before_drawing():
    setup = ("from semrsm.analysis import bootstrap_similarity\n"
             "rng = np.random.default_rng(0)\nx = rng.random((32, 32)); a = x + x.T\n"
             "y = rng.random((32, 32)); b = y + y.T\n"
             "bootstrap_similarity(a, b, n_boot=2)\n")
    grown, error = _measure("bootstrap_similarity(a, b, n_boot=100_000_000)", setup)
    assert grown < BOUND_MB, (grown, error)
    assert error is not None and error.startswith("AnalysisError") and "100,000" in error, error


def test_bootstrap_draws_come_in_blocks_with_the_same_values():
    from semrsm.analysis.bootstrap import MAX_BOOT, _check_boot, _draws

    for n, n_boot in [(3, 7), (40, 5000), (3000, 400)]:  # blocks of one row and of many
        want = np.random.default_rng(5).integers(0, n, size=(n_boot, n))
        assert np.array_equal(np.array(list(_draws(n, n_boot, 5))), want)
    # the largest bootstrap allowed never holds its (n_boot, N) draws: 1.6 GB at N = 2000
    grown, error = _measure(
        "for i, row in enumerate(_draws(2000, MAX_BOOT, 0)):\n    if i == 3000: break",
        "from semrsm.analysis.bootstrap import MAX_BOOT, _draws\n",
    )
    assert error is None and grown < 50, (grown, error)
    for bad in (-1, 1.5, "a", None, True, MAX_BOOT + 1, float("nan")):
        with pytest.raises(ValueError, match="n_boot"):
            _check_boot(bad, 0.95)
    for bad in (0, 1, "x", float("nan")):
        with pytest.raises(ValueError, match="confidence"):
            _check_boot(10, bad)


def _fake_npy(path: Path, shape: tuple[int, ...], size: int | None = None) -> Path:
    """A .npy whose header claims ``shape`` float32 and holds no data (or is ``size`` long,
    sparse)."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": shape})
    if size is not None:
        os.truncate(path, size)
    return path


def test_a_npy_header_claiming_373_gib_is_refused_before_loading(tmp_path):
    shape = (100_000, 1000, 1000)  # 4e11 bytes of float32 = 372.5 GiB
    tiny = _fake_npy(tmp_path / "claims.npy", shape)
    setup = "from semrsm.__main__ import main, build_parser\nbuild_parser()\n"
    grown, error = _measure(
        f"code = main(['rsm', '--tokens', {str(tiny)!r}, '--out', {str(tmp_path / 'o.npz')!r}])\n"
        "assert code == 2, code", setup)
    assert error is None and grown < BOUND_MB, (grown, error)
    try:  # the same header on a (sparse) file that really is that long
        sparse = _fake_npy(tmp_path / "sparse.npy", shape, 4 * 10**11 + 128)
    except OSError:
        sparse = None
    if sparse is not None:
        grown, error = _measure(
            f"code = main(['rsm', '--tokens', {str(sparse)!r}, '--out', "
            f"{str(tmp_path / 'o.npz')!r}])\nassert code == 2, code", setup)
        assert error is None and grown < BOUND_MB, (grown, error)
        sparse.unlink()
    assert not list(tmp_path.glob(".o.npz*")) and not (tmp_path / "o.npz").exists()


def test_bad_token_files_are_one_line_messages(tmp_path, capsys):
    cases = {
        "empty.npy": (b"", "is empty (0 bytes)"),
        "notnpy.npy": (b"PK\x03\x04 a zip", "not a readable .npy"),
    }
    for name, (data, _) in cases.items():
        (tmp_path / name).write_bytes(data)
    _fake_npy(tmp_path / "claims.npy", (100_000, 1000, 1000))
    cases["claims.npy"] = (None, "is truncated: its header says shape (100000, 1000, 1000)")
    np.save(tmp_path / "long.npy", np.ones((2, 3, 4), np.longdouble))
    cases["long.npy"] = (None, "float32 or float64")
    full = tmp_path / "ok.npy"
    np.save(full, np.ones((4, 9, 5), np.float32))
    (tmp_path / "cut.npy").write_bytes(full.read_bytes()[:-7])
    cases["cut.npy"] = (None, "is truncated")
    for name, (_, message) in cases.items():
        assert main(["rsm", "--tokens", str(tmp_path / name), "--out", str(tmp_path / "o.npz")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    _fake_npy(tmp_path / "sparse.npy", (100_000, 1000, 1000), 4 * 10**11 + 128)
    assert main(["rsm", "--tokens", str(tmp_path / "sparse.npy"), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "372.5 GiB" in err and "SEMRSM_MAX_MEMORY" in err and "over the limit" in err, err


def test_built_in_image_sets_are_bounded(tmp_path, capsys):
    from semrsm.images import MAX_SPEC_IMAGES, ImageError, load_image_set

    for spec in ("shapes:100000000", f"shapes:{MAX_SPEC_IMAGES + 1}:2",
                 "crops:" + ",".join(["astronaut"] * 30) + ":400", "shapes:" + "9" * 5000):
        with pytest.raises(ImageError, match="at most 10,000|must be an integer"):
            load_image_set(spec)
    started = time.perf_counter()
    assert main(["rsm", "--model", "demo-resnet", "--layer", "layer1", "--images",
                 "shapes:100000000", "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert "100,000,000 images" in err and "at most 10,000" in err
    assert time.perf_counter() - started < 60


# --------------------------------------------------------------------------- B. messages


@pytest.mark.parametrize("kwargs,message", [
    ({"kernel": None}, "kernel: give one of"),
    ({"kernel": 123}, "kernel: give one of"),
    ({"kernel": ["cosine", 5]}, "unknown kernel"),
    ({"chunk_pairs": 1.5}, "chunk_pairs: pairs per chunk must be a whole number"),
    ({"chunk_pairs": "a"}, "chunk_pairs: pairs per chunk must be a whole number"),
    ({"chunk_pairs": True}, "chunk_pairs"),
    ({"chunk_pairs": 0}, "chunk_pairs must be at least 1"),
    ({"matcher": "batch_optimal", "window": 1e30}, "at most 2,147,483,647"),
    ({"matcher": "batch_optimal", "window": 2**63}, "at most 2,147,483,647"),
    ({"matcher": "batch_optimal", "window": 10**400}, "401 digits"),
    ({"matcher": "topk_greedy", "k": 2**63}, "at most 2,147,483,647"),
    ({"device": "meta"}, "device: 'meta' cannot run the computation"),
    ({"device": "mps"}, "device"),
    ({"sigma2": -1}, "sigma2: the RBF bandwidth"),
    ({"sigma2": "abc"}, "sigma2: the RBF bandwidth .* got str 'abc'"),
    ({"sigma2": float("nan")}, "sigma2"),
    ({"sigma2": True}, "sigma2"),
    ({"max_memory": "lots"}, "max_memory: 'lots' is not a memory size"),
])
def test_bad_arguments_are_value_errors_before_any_computation(kwargs, message, monkeypatch):
    def computed(*args, **kw):
        raise _Ran("the tokens were used before the arguments were checked")

    monkeypatch.setattr(rsm_module, "validate_tokens", computed)
    t = np.ones((3, 4, 2), np.float32)
    kwargs = {"kernel": "rbf", **kwargs}
    with pytest.raises(ValueError, match=message):
        semrsm.semantic_rsm(t, **kwargs)


def test_spatial_and_pair_arguments_and_float128_are_messages():
    t = np.ones((3, 4, 2))
    for kwargs, message in [({"kernel": None}, "kernel"), ({"device": "meta"}, "device"),
                            ({"kernel": "rbf", "sigma2": "abc"}, "sigma2"),
                            ({"kernel": "rbf", "sigma2": -1}, "sigma2")]:
        with pytest.raises(ValueError, match=message):
            semrsm.spatial_rsm(t, **kwargs)
    for call in (semrsm.semantic_rsm, semrsm.spatial_rsm):
        with pytest.raises(ValueError, match="float128|float96") as info:
            call(t.astype(np.longdouble))
        assert "x.astype(np.float64)" in str(info.value)
    with pytest.raises(ValueError, match="float32 or float64"):
        semrsm.match_pair(t[0].astype(np.longdouble), t[1])
    with pytest.raises(ValueError, match="at most 2,147,483,647"):
        semrsm.match_pair(t[0], t[1], matcher="batch_optimal", window=2**63)


def test_cli_arguments_are_one_line_errors(tmp_path, capsys):
    tokens = tmp_path / "t.npy"
    np.save(tokens, np.random.default_rng(0).random((4, 9, 5)).astype(np.float32))
    base = ["rsm", "--tokens", str(tokens), "--out", str(tmp_path / "o.npz")]
    for extra, message in [
        (["--matcher", "batch_optimal", "--window", str(2**63)], "at most 2,147,483,647"),
        (["--matcher", "topk_greedy", "--k", "9" * 400], "at most 2,147,483,647"),
        (["--device", "meta"], "device: 'meta'"),
        (["--device", "cuda:99"], "cuda"),
    ]:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    with pytest.raises(SystemExit) as info:  # argparse: not an integer
        main(base + ["--matcher", "batch_optimal", "--window", "1e30"])
    assert info.value.code == 2 and "invalid int value" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists() and not list(tmp_path.glob(".o.npz.*"))


def test_matcher_options_for_another_matcher_are_a_warning(tmp_path, capsys):
    tokens = tmp_path / "t.npy"
    np.save(tokens, np.random.default_rng(0).random((4, 9, 5)).astype(np.float32))
    assert main(["rsm", "--tokens", str(tokens), "--matcher", "exact", "--window", "4",
                 "--out", str(tmp_path / "o.npz")]) == 0
    err = capsys.readouterr().err
    assert "warning: --window is a parameter of --matcher batch_optimal; ignored with --matcher exact" in err
    assert main(["rsm", "--tokens", str(tokens), "--matcher", "batch_optimal", "--k", "4",
                 "--out", str(tmp_path / "o.npz")]) == 0
    assert "warning: --k is a parameter of --matcher topk_greedy" in capsys.readouterr().err


def test_unexpected_errors_are_one_line_too(tmp_path, capsys, monkeypatch):
    tokens = tmp_path / "t.npy"
    np.save(tokens, np.ones((3, 4, 2), np.float32))

    def broken(*args, **kwargs):
        raise RuntimeError("something\nunforeseen")

    monkeypatch.setattr(semrsm, "spatial_rsm", broken)
    monkeypatch.delenv("SEMRSM_DEBUG", raising=False)
    assert main(["rsm", "--tokens", str(tokens), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: RuntimeError: something unforeseen (unexpected; set SEMRSM_DEBUG=1")
    assert "Traceback" not in err and not list(tmp_path.glob(".o.npz.*"))
    monkeypatch.setattr(semrsm, "spatial_rsm", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    assert main(["rsm", "--tokens", str(tokens), "--out", str(tmp_path / "o.npz")]) == 2
    assert capsys.readouterr().err.startswith("error: ran out of memory")


def _as_in_a_terminal() -> None:
    """In the child before exec: Ctrl-C at its default, as for a command typed in a
    terminal. A job started in the background (``cmd &``, nohup, some CI runners) inherits
    SIGINT ignored, and the CLI rightly leaves an ignored SIGINT ignored, as Python does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str, extra_env: dict | None = None, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    env.pop("SEMRSM_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "semrsm", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True, preexec_fn=_as_in_a_terminal,
                            **kwargs)


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert proc.poll() is None, f"ended early: {path.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} within {timeout} s"
        time.sleep(0.1)


def _slow_tokens(tmp_path: Path) -> Path:
    # 79,800 exact matchings of 196 positions: a minute or more on any machine, so that the
    # signal always lands in the middle of the work (7,140 ended within a second on some)
    path = tmp_path / "slow.npy"
    np.save(path, np.random.default_rng(0).random((400, 196, 32)).astype(np.float32))
    return path


def _wait_or_dump(proc: subprocess.Popen, err_path: Path, timeout: float) -> int:
    """``proc``'s exit code; if it hangs, every thread's stack (faulthandler) in the failure."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: all threads' tracebacks
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        pytest.fail(f"still running {timeout:g} s after the signal:\n{err_path.read_text()[-8000:]}")


@pytest.mark.timeout(400)
@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "terminated")])
def test_interrupting_the_cli_is_one_line_and_leaves_nothing(tmp_path, sig, code, word):
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = _cli("rsm", "--tokens", str(_slow_tokens(tmp_path)), "--out",
                    str(tmp_path / "r.npz"), "--device", "cpu", stderr=err,
                    extra_env={"PYTHONFAULTHANDLER": "1"})
        try:
            _wait_for(err_path, "matching [", proc)
            time.sleep(0.5)  # inside the solves, not at their start
            proc.send_signal(sig)
            t0 = time.monotonic()
            assert _wait_or_dump(proc, err_path, 120) == code
            assert time.monotonic() - t0 < EXIT_GRACE_SECONDS + 5
        finally:
            proc.kill()
    err = err_path.read_text()
    assert err.rstrip().endswith(word) and "Traceback" not in err, err
    assert not (tmp_path / "r.npz").exists()
    assert not list(tmp_path.glob(".r.npz.*")), list(tmp_path.iterdir())  # no temporary


def _blocked_cli(tmp_path: Path, err, preexec) -> subprocess.Popen:
    """The CLI's signal handling around a ``main`` whose way out blocks: a non-daemon thread
    that never ends would keep the interpreter from exiting forever."""
    script = (
        "import sys, threading, time\n"
        "import semrsm.__main__ as cli\n"
        "from semrsm.atomic import AtomicOutput\n"
        "cli.EXIT_GRACE_SECONDS = 1.0\n"
        "def main(argv):\n"
        f"    out = AtomicOutput({str(tmp_path / 'r.npz')!r})\n"
        "    threading.Thread(target=lambda: time.sleep(3600)).start()\n"
        "    print('ready', file=sys.stderr, flush=True)\n"
        "    time.sleep(3600)\n"
        "cli.main = main\n"
        "sys.exit(cli.run([]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script], env=env, stderr=err,
                            preexec_fn=preexec)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "terminated")])
def test_a_blocked_way_out_still_ends_within_the_grace_time(tmp_path, sig, code, word):
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = _blocked_cli(tmp_path, err, _as_in_a_terminal)
        try:
            _wait_for(err_path, "ready", proc, timeout=60)
            proc.send_signal(sig)
            t0 = time.monotonic()
            assert _wait_or_dump(proc, err_path, 30) == code
            assert time.monotonic() - t0 < 10
        finally:
            proc.kill()
    err = err_path.read_text()
    assert err.rstrip().endswith(word) and err.count(word) == 1 and "Traceback" not in err, err
    assert not list(tmp_path.glob(".r.npz.*")), list(tmp_path.iterdir())


@pytest.mark.timeout(120)
def test_a_background_job_keeps_ignoring_ctrl_c_and_still_ends_on_sigterm(tmp_path):
    """Started with SIGINT ignored (``cmd &``), the CLI leaves it ignored, as every Unix
    tool and Python itself do; SIGTERM still ends it, within the grace time."""
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err:
        proc = _blocked_cli(tmp_path, err, lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        try:
            _wait_for(err_path, "ready", proc, timeout=60)
            proc.send_signal(signal.SIGINT)
            time.sleep(3)  # three times the grace time of this script
            assert proc.poll() is None, err_path.read_text()
            proc.send_signal(signal.SIGTERM)
            assert _wait_or_dump(proc, err_path, 30) == 143
        finally:
            proc.kill()
    err = err_path.read_text()
    assert "interrupted" not in err and err.rstrip().endswith("terminated"), err


# --------------------------------------------------------------------------- C. output


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_the_output_are_removed_on_the_next_run(tmp_path, capsys):
    from semrsm.atomic import _host_tag

    tokens = tmp_path / "t.npy"
    np.save(tokens, np.ones((3, 4, 2), np.float32))
    host, folder = _host_tag(), tmp_path / "out"
    folder.mkdir()
    dead = folder / f".r.npz.{_dead_pid()}-{host}.abc123.tmp"
    old = folder / ".r.npz.k2j4h5g6.tmp"  # an older version's name, without a PID
    alive = folder / f".r.npz.{os.getpid()}-{host}.def456.tmp"  # a writer still running
    other_host = folder / f".r.npz.{_dead_pid()}-00000000.ghi789.tmp"
    unrelated = folder / f".other.npz.{_dead_pid()}-{host}.jkl012.tmp"
    for p in (dead, old, alive, other_host, unrelated):
        p.write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert main(["rsm", "--tokens", str(tokens), "--out", str(folder / "r.npz")]) == 0
    assert not dead.exists() and not old.exists()
    assert alive.exists() and other_host.exists() and unrelated.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [alive.name, other_host.name, unrelated.name, "r.npz"])


@pytest.mark.timeout(300)
def test_a_writer_killed_mid_write_leaves_a_temporary_the_next_run_removes(tmp_path):
    tokens = tmp_path / "t.npy"
    np.save(tokens, np.ones((3, 4, 2), np.float32))
    out = tmp_path / "r.npz"
    # the CLI with a save that writes 16 MB and then hangs: SIGKILL lands mid-write
    code = ("import sys, time, numpy as np\n"
            "def slow(f, **arrays):\n"
            "    f.write(b'PK' + bytes(16 * 2**20)); f.flush(); time.sleep(600)\n"
            "np.savez_compressed = slow\n"
            "from semrsm.__main__ import run\n"
            f"sys.exit(run(['rsm', '--tokens', {str(tokens)!r}, '--out', {str(out)!r}]))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not [p for p in tmp_path.glob(".r.npz.*.tmp") if p.stat().st_size > 2**24]:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    left = list(tmp_path.glob(".r.npz.*.tmp"))
    assert len(left) == 1 and f".{proc.pid}-" in left[0].name  # the writer named itself
    assert not out.exists()
    assert main(["rsm", "--tokens", str(tokens), "--out", str(out)]) == 0
    assert out.is_file() and not list(tmp_path.glob(".r.npz.*.tmp"))


def test_output_is_created_before_computing_even_where_access_says_yes(tmp_path, capsys,
                                                                        monkeypatch):
    def computed(*args, **kwargs):
        raise _Ran("computed before --out was checked")

    monkeypatch.setattr(np, "load", computed)
    tokens = tmp_path / "t.npy"
    np.save(tokens, np.ones((3, 4, 2), np.float32))
    for out in ("/proc/semrsm-test.npz", "/proc/self/semrsm.npz", "/sys/semrsm.npz"):
        assert main(["rsm", "--tokens", str(tokens), "--out", out]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "--out" in err and "writable" in err, err


def test_compare_checks_reference_out_and_bootstrap_before_running(tmp_path, capsys,
                                                                    monkeypatch):
    import semrsm.explorer.comparison as comparison
    import semrsm.explorer.sources as sources

    def ran(*args, **kwargs):
        raise _Ran("A vs B ran before the arguments were checked")

    monkeypatch.setattr(comparison, "compare_configs", ran)
    monkeypatch.setattr(sources, "load_model", ran)
    base = ["compare", "--images", "shapes:4", "--cache-dir", str(tmp_path / "c")]
    (tmp_path / "bad.csv").write_text("1,2\n3\n")
    for extra, message in [
        (["--reference", str(tmp_path / "missing.npy")], "missing.npy"),
        (["--reference", str(tmp_path / "bad.csv")], "bad.csv"),
        (["--out", "/proc/semrsm-cmp.csv"], "--out: cannot create a file in '/proc'"),
        (["--n-boot", "100000000"], "n_boot"),
        (["--ci", "2"], "confidence"),
        (["--device", "meta"], "device"),
        (["--matcher", "batch_optimal", "--window", str(2**63)], "at most 2,147,483,647"),
    ]:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, err
    assert not list(tmp_path.glob(".*.tmp"))
    # a matcher option for another matcher is a warning, and the run goes on (to `ran`)
    with pytest.raises(_Ran, match="A vs B ran"):
        main(base + ["--window", "8", "--out", str(tmp_path / "cmp.csv")])
    assert "warning: --window is a parameter of --matcher batch_optimal" in capsys.readouterr().err
    assert not list(tmp_path.glob(".cmp.csv.*"))  # the reserved output was discarded
