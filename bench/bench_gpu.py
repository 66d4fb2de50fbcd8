"""One-shot GPU check of the exact and approximate matchers, within a time budget.

    python bench/bench_gpu.py --budget 300                    # CUDA machine: the device check
    TRITON_INTERPRET=1 python bench/bench_gpu.py --device cpu --tiny --budget 120
                                                              # CPU rehearsal of the same code

Prints markdown (device, date, load) with:

1. exact matching, pairs/s (cost products included) at S = 49, 196, 784 and N = 64, 256:
   torch-linear-assignment (``tla``), this project's Triton kernel (``triton``), the
   torch-op auction (``torch``), the numba CPU solver (``numba``, float64 costs copied to
   the host), a one-thread scipy loop on a sample, and the fp32 products alone. Every
   solver is first warmed up on every shape it will see (Triton compiles per S); each
   cell is then time-boxed (``--cell-seconds``), so pairs are capped by time;
2. the largest relative gap of each solver's value to scipy's optimum on sampled pairs;
3. greedy and Batch-Optimal at S = 3,136: value / exact optimum (exact by the numba
   solver) and pairs/s, for the implementation ``backend="auto"`` picks and for the CPU;
4. end-to-end ``semantic_rsm`` at N = 256 and 1,024, S = 196 (``auto`` and ``triton``),
   the CLI on the device against the CLI on the CPU (same tokens, N = 256), and greedy /
   Batch-Optimal / TopK-Greedy end to end (N = 128) with ``auto`` and the CPU;
5. tuning of the Triton kernel (row-reduction bids, warps per program) at S = 196, 784;
6. a suggested ``CUDA_EXACT_TABLE`` (semrsm/matching/registry.py) from the measured rates.

The run stops itself within ``--budget`` seconds: a section that would not fit is
skipped with a note. A solver that fails prints its error in its cell; the run goes on.
Features: random-init timm resnet18 on crops of scikit-image's photos (bench/features.py,
no download); layer4/3/2/1 give S = 49/196/784/3136 at 224 px (``--tiny``: 64 px, S =
4/16/64/256, small N, for CPU runs under ``TRITON_INTERPRET=1``).
"""

# ruff: noqa: E402  (the clock starts before the heavy imports: the budget counts them)
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import traceback

_T_START = time.perf_counter()  # the budget counts imports too
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.features import photo_crops  # noqa: E402
from semrsm._platform import machine_description  # noqa: E402
from semrsm.matching import select_implementation, solve_batch  # noqa: E402
from semrsm.matching.torch_batched import exact_solver  # noqa: E402

LAYERS = ("layer1", "layer2", "layer3", "layer4")
ERRORS: list[str] = []


class Budget:
    """Wall-clock budget of the whole run."""

    def __init__(self, seconds: float, slack: float) -> None:
        self.t0 = _T_START
        self.seconds = seconds
        self.slack = slack  # seconds a short step may need

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.t0)

    def allows(self, need: float) -> bool:
        return self.left() >= need


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load() -> str:
    try:
        return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load n/a"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (host: {machine_description()})"
    return f"CPU only: {machine_description()}"


@torch.inference_mode()
def resnet_tokens(n_per_layer: dict[str, int], image_size: int, device: torch.device) -> dict[int, torch.Tensor]:
    """(n, S, C) float32 ReLU tokens of a random-init resnet18 per layer, keyed by S.

    As ``bench.features.resnet18_tokens`` (same crops, seed and layers), run on ``device``
    in one pass for all layers.
    """
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False).eval().to(device)
    n = max(n_per_layer.values())
    images = crops(n, image_size)
    feats: dict[str, list[torch.Tensor]] = {}
    for lo in range(0, n, 64):
        x = images[lo:lo + 64].to(device)
        x = model.maxpool(model.act1(model.bn1(model.conv1(x))))
        for name in LAYERS:
            x = getattr(model, name)(x)
            if lo < n_per_layer.get(name, 0):
                feats.setdefault(name, []).append(x.flatten(2).transpose(1, 2).contiguous())
    out = {}
    for name, parts in feats.items():
        t = torch.cat(parts)[: n_per_layer[name]].float().contiguous()
        out[t.shape[1]] = t
    return out


def crops(n: int, size: int, per_job: int = 60) -> torch.Tensor:
    """``n`` photo crops (``bench.features.photo_crops``), made in parallel processes.

    Job ``k`` makes ``per_job`` crops with seed ``k`` (a multiple of the 5 photos, so every
    photo keeps its share). Resizing 1,024 crops takes ~20 s on one core; this keeps the
    device check's budget for the solvers.
    """
    jobs = [(min(per_job, n - lo), k) for k, lo in enumerate(range(0, n, per_job))]
    workers = min(len(jobs), os.cpu_count() or 1, 16)
    if workers <= 1:
        return torch.cat([photo_crops(m, seed=k, size=size) for m, k in jobs])
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
        parts = list(ex.map(photo_crops, *zip(*jobs, strict=True), [size] * len(jobs)))
    return torch.cat(parts)


def pairs_of(n: int, limit: int | None = None) -> np.ndarray:
    i, j = np.triu_indices(n, k=1)
    p = np.stack([i, j], 1)
    return p if limit is None else p[:limit]


def costs_of(tok: torch.Tensor, pairs: np.ndarray) -> torch.Tensor:
    idx = torch.as_tensor(pairs, device=tok.device)
    return torch.bmm(tok[idx[:, 0]], tok[idx[:, 1]].transpose(1, 2))


# -- solvers: fn(costs on the device) -> values (B,) float64 ----------------------------


def exact_fns(device: torch.device) -> dict[str, Callable | str]:
    """Exact solvers by implementation name; a string says why one is not available."""
    from semrsm.matching import registry

    out: dict[str, Callable | str] = {}
    from semrsm.matching.tla import installed

    for name in ("tla", "triton", "torch"):
        cpu_tla = name == "tla" and device.type == "cpu" and installed()  # its scipy loop
        if not registry.gpu_usable(name, device) and not cpu_tla:
            out[name] = "not installed" if name == "tla" and not installed() else f"n/a on {device.type}"
            continue
        solve = exact_solver(name)
        out[name] = (lambda s: lambda c, st=None: s(c, {} if st is None else st)[1])(solve)

    def numba(c: torch.Tensor, st=None) -> torch.Tensor:
        _, v = solve_batch(c.detach().to("cpu", torch.float64).numpy(), "exact", backend="numba")
        return torch.from_numpy(v)

    out["numba"] = numba
    return out


def rate(fn: Callable, tok: torch.Tensor, pairs: np.ndarray, chunk: int, seconds: float,
         device: torch.device) -> tuple[float, int, dict]:
    """Pairs/s of ``fn`` over chunks of ``pairs`` (products included), stopping after ``seconds``."""
    stats = {"fallback": 0}
    sync(device)
    t0 = time.perf_counter()
    done = 0
    for lo in range(0, len(pairs), chunk):
        st: dict = {}
        v = fn(costs_of(tok, pairs[lo:lo + chunk]), st)
        if isinstance(v, torch.Tensor):
            v.sum().item()  # wait for the device
        stats["fallback"] += int(st.get("fallback", 0))
        done += min(chunk, len(pairs) - lo)
        if time.perf_counter() - t0 > seconds:
            break
    sync(device)
    return done / (time.perf_counter() - t0), done, stats


def fmt(x: float | str) -> str:
    if isinstance(x, str):
        return x
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def guarded(label: str, fn: Callable):
    """Run ``fn``; on an exception record it and return a short message for the table."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - one failing solver must not end the device check
        ERRORS.append(f"{label}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}")
        return f"error ({type(e).__name__})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for the whole run")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="64 px images, tiny N: a CPU rehearsal")
    ap.add_argument("--cell-seconds", type=float, default=None, help="time box per solver and cell")
    args = ap.parse_args(argv)
    budget = Budget(args.budget, 3.0 if args.tiny else 20.0)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU here: use --device cpu (with --tiny and TRITON_INTERPRET=1)")
        return 2
    if args.tiny:
        image_size, ns, e2e_ns = 64, (3, 4), (4,)
        table_layers, quality_layer, e2e_layer = ("layer4", "layer3"), "layer2", "layer3"
        windows, chunk_of, cell = (8,), (lambda s: 3), 0.5
        gap_pairs, quality_pairs, scipy_pairs = 2, 1, 3
    else:
        image_size, ns, e2e_ns = 224, (64, 256), (256, 1024)
        table_layers, quality_layer, e2e_layer = ("layer4", "layer3", "layer2"), "layer1", "layer3"
        windows, cell = (64, 128, 256), 2.5
        chunk_of = lambda s: {49: 32768, 196: 16384}.get(s, 1024)  # noqa: E731
        gap_pairs, quality_pairs, scipy_pairs = 32, 4, 40
    cell = args.cell_seconds or cell
    torch.set_num_threads(min(torch.get_num_threads(), 16))
    import triton

    print(f"# bench_gpu: {device_name(device)}\n\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"torch {torch.__version__}, triton {triton.__version__}, budget {args.budget:.0f} s, "
          f"{load()}, TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')}\n")

    t = time.perf_counter()
    n_tab = max(max(ns), max(e2e_ns))
    need = {**{name: max(ns) for name in table_layers}, e2e_layer: n_tab, quality_layer: quality_pairs + 1}
    tokens_by_layer = resnet_tokens(need, image_size, device)
    layer_s = {name: (image_size // (4 * 2 ** k)) ** 2 for k, name in enumerate(LAYERS)}
    print(f"features: random-init resnet18 on {n_tab} photo crops at {image_size} px, "
          f"{time.perf_counter() - t:.1f} s; " + ", ".join(
              f"S={s}×C={v.shape[2]} (N={v.shape[0]})" for s, v in sorted(tokens_by_layer.items())) + "\n")
    tok = lambda layer: tokens_by_layer[layer_s[layer]]  # noqa: E731

    fns = exact_fns(device)
    usable = {k: f for k, f in fns.items() if not isinstance(f, str)}
    table_s = [layer_s[x] for x in table_layers]

    # -- warm-up: every solver on every shape it will see (compiles are not timed) -----
    t = time.perf_counter()
    warm_sizes = sorted(set(table_s) | set(windows) | {layer_s[e2e_layer]})
    for s in warm_sizes:
        src = next((v for v in tokens_by_layer.values() if v.shape[1] >= s and len(v) >= 2), None)
        if src is None:
            continue
        c = costs_of(src[:3, :s].contiguous(), pairs_of(min(3, len(src))))
        for name, f in usable.items():
            if name in ("numba",):
                continue
            guarded(f"warm-up {name} S={s}", lambda f=f, c=c: f(c))
    sync(device)
    print(f"warm-up (compiles) of {', '.join(k for k in usable if k != 'numba')} at S = "
          f"{', '.join(map(str, warm_sizes))}: {time.perf_counter() - t:.1f} s\n")

    # -- 1. exact: pairs/s ----------------------------------------------------------------
    print(f"## Exact matching, pairs/s (products included; each cell time-boxed to ~{cell:g} s)\n")
    names = ["tla", "triton", "torch", "numba"]
    print("| S × C | N | pairs (max) | " + " | ".join(names) + " | scipy loop, 1 thread | fp32 products | "
          "triton / tla | triton fallback |")
    print("|---" * (len(names) + 7) + "|")
    rates: dict[tuple[int, int, str], float] = {}
    per_cell = cell * (len(usable) + 2) + 2
    for s in table_s:
        for n in ns:
            if not budget.allows(per_cell + 10 * budget.slack / 20 + budget.slack):
                print(f"| {s} | {n} | skipped: {budget.left():.0f} s of budget left |")
                continue
            tk = tok(table_layers[table_s.index(s)])[:n]
            pairs = pairs_of(n)
            cells, fb = [], "-"
            for name in names:
                f = fns[name]
                if isinstance(f, str):
                    cells.append(f)
                    continue
                # slow solvers get small chunks so one chunk stays within the time box
                slow = {"torch": {49: 4096, 196: 256}, "numba": {49: 4096, 196: 512}}.get(name)
                ch = min(chunk_of(s), slow.get(s, 32)) if slow else chunk_of(s)
                r = guarded(f"{name} S={s} N={n}", lambda f=f, ch=ch, tk=tk, pairs=pairs: rate(f, tk, pairs, ch, cell, device))
                if isinstance(r, str):
                    cells.append(r)
                    continue
                rates[(s, n, name)] = r[0]
                cells.append(fmt(r[0]))
                if name == "triton":
                    fb = str(r[2]["fallback"])
            sp = guarded(f"scipy S={s}", lambda tk=tk, pairs=pairs: scipy_rate(tk, pairs[:scipy_pairs], cell))
            ch_s = chunk_of(s)
            prod = guarded(f"products S={s}", lambda tk=tk, pairs=pairs, ch=ch_s: rate(
                lambda c, st: None, tk, pairs, ch, cell, device)[0])
            ratio = (f"{rates[(s, n, 'triton')] / rates[(s, n, 'tla')]:.2f}×"
                     if (s, n, "triton") in rates and (s, n, "tla") in rates else "-")
            print(f"| {s} × {tk.shape[2]} | {n} | {len(pairs):,} | " + " | ".join(cells)
                  + f" | {fmt(sp)} | {fmt(prod)} | {ratio} | {fb} |", flush=True)

    # -- 2. exactness against scipy ---------------------------------------------------------
    print("\n## Largest relative gap to scipy's optimum (sampled pairs of N = "
          f"{max(ns)}; float32 costs, scipy in float64)\n")
    print("| S | pairs | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
    gaps: dict[tuple[int, str], float] = {}
    for s, layer in zip(table_s, table_layers, strict=True):
        if not budget.allows(budget.slack + 10 * (s / 784) ** 2):
            print(f"| {s} | skipped: {budget.left():.0f} s of budget left |")
            continue
        tk = tok(layer)
        rng = np.random.default_rng(1)
        allp = pairs_of(len(tk))
        pick = allp[rng.choice(len(allp), size=min(gap_pairs, len(allp)), replace=False)]
        c = costs_of(tk, pick)
        opt = scipy_values(c)
        cells = []
        for name in names:
            f = fns[name]
            if isinstance(f, str):
                cells.append(f)
                continue
            v = guarded(f"gap {name} S={s}", lambda f=f, c=c: f(c))
            if isinstance(v, str):
                cells.append(v)
                continue
            g = float(np.max(np.abs(v.cpu().numpy() - opt) / np.maximum(np.abs(opt), 1e-300)))
            gaps[(s, name)] = g
            cells.append(f"{g:.1e}")
        print(f"| {s} | {len(pick)} | " + " | ".join(cells) + " |", flush=True)

    # -- 3. approximate matchers at the largest S -----------------------------------------
    s_big = layer_s[quality_layer]
    print(f"\n## Greedy and Batch-Optimal at S = {s_big} ({quality_pairs} pairs)\n")
    if budget.allows(3 * budget.slack):
        guarded("quality", lambda: quality_section(tok(quality_layer), quality_pairs, windows, device, budget))
    else:
        print(f"skipped: {budget.left():.0f} s of budget left\n")

    # -- 4. end to end ------------------------------------------------------------------------
    s_e2e = layer_s[e2e_layer]
    print(f"## End-to-end `semantic_rsm` (cosine, exact), S = {s_e2e}\n")
    print("| N | pairs | backend | implementation | seconds | pairs/s |\n|---|---|---|---|---|---|")
    import semrsm

    for n in e2e_ns:
        tk = tok(e2e_layer)[:n]
        npairs = n * (n - 1) // 2
        for backend in ("auto", "triton"):
            impl = select_implementation("exact", device, s_e2e, backend=backend)
            key = (s_e2e, max(ns), impl)
            if impl not in usable:
                print(f"| {n} | {npairs:,} | {backend} | {impl} | n/a | |")
                continue
            est = npairs / rates[key] * 1.5 + budget.slack / 4 if key in rates else None
            if est is None or not budget.allows(est + budget.slack / 4):
                why = "no measured rate" if est is None else f"needs ~{est:.0f} s"
                print(f"| {n} | {npairs:,} | {backend} | {impl} | skipped ({why}, "
                      f"{budget.left():.0f} s left) | |")
                continue

            def run(tk=tk, backend=backend):
                sync(device)
                t0 = time.perf_counter()
                semrsm.semantic_rsm(tk, kernel="cosine", matcher="exact", device=str(device), backend=backend)
                sync(device)
                return time.perf_counter() - t0

            dt = guarded(f"e2e {backend} N={n}", run)
            cell_s = dt if isinstance(dt, str) else f"{dt:.2f}"
            cell_r = "" if isinstance(dt, str) else fmt(npairs / dt)
            print(f"| {n} | {npairs:,} | {backend} | {impl} | {cell_s} | {cell_r} |", flush=True)

    # -- 4a. the CLI on the GPU against the CPU, same command ---------------------------------
    n_cli = 4 if args.tiny else 256
    guarded("cli", lambda: cli_section(tok(e2e_layer)[:n_cli], device, rates.get((s_e2e, max(ns), "numba")),
                                       budget))

    # -- 4b. end to end, approximate matchers: auto against the CPU ---------------------------
    n_ap = 4 if args.tiny else 128
    print(f"\n## End-to-end approximate matchers, N = {n_ap}, S = {s_e2e}: `auto` against the CPU\n")
    print("| matcher | backend | implementation | seconds | pairs/s |\n|---|---|---|---|---|")
    tk = tok(e2e_layer)[:n_ap]
    for matcher, params in [("greedy", {}), ("batch_optimal", {"window": 128 if not args.tiny else 8}),
                            ("topk_greedy", {"k": 32 if not args.tiny else 4})]:
        for backend in ("auto", "numba"):
            impl = select_implementation(matcher, device, s_e2e, params, backend)
            label = matcher + "".join(f" ({k} {v})" for k, v in params.items())
            if not budget.allows(budget.slack):
                print(f"| {label} | {backend} | {impl} | skipped ({budget.left():.0f} s left) | |")
                continue

            def run_ap(tk=tk, matcher=matcher, params=params, backend=backend):
                sync(device)
                t0 = time.perf_counter()
                semrsm.semantic_rsm(tk, kernel="cosine", matcher=matcher, device=str(device),
                                    backend=backend, **params)
                sync(device)
                return time.perf_counter() - t0

            dt = guarded(f"e2e {label} {backend}", run_ap)
            cell_s = dt if isinstance(dt, str) else f"{dt:.2f}"
            cell_r = "" if isinstance(dt, str) else fmt(n_ap * (n_ap - 1) / 2 / dt)
            print(f"| {label} | {backend} | {impl} | {cell_s} | {cell_r} |", flush=True)

    # -- 4c. Triton kernel tuning: row-reduction bids and warps per program ---------------------
    if "triton" in usable:
        from semrsm.matching.triton_lap import (
            ALGORITHM_BY_S,
            DEFAULT_ARR_ITERS,
            num_warps_for,
            solve_exact_triton,
        )

        print(f"\n(`triton` in the tables above: ALGORITHM_BY_S = {ALGORITHM_BY_S})")

        print("\n## Triton kernels: JV (row-reduction bids `arr_iters`) or auction, warps per "
              f"program, N = {max(ns)} (auction: bids and ε phases in the bids/paths columns)\n")
        print("| S | kernel | arr_iters | warps | pairs/s | bids / problem | paths (phases) / problem | "
              "Dijkstra steps / problem | fallback |\n|---|---|---|---|---|---|---|---|---|")
        # the acceptance sizes (196, 784) on a GPU; the smallest size in a CPU rehearsal
        tune = [(s, la) for s, la in zip(table_s, table_layers, strict=True)
                if (s == table_s[0]) == args.tiny]
        for s, layer in tune:
            tk = tok(layer)[:max(ns)]
            pairs = pairs_of(len(tk))
            w0 = num_warps_for(max(16, triton.next_power_of_2(s)))
            configs = [("jv", DEFAULT_ARR_ITERS, w0), ("jv", 2, w0), ("jv", 8, w0),
                       ("jv", DEFAULT_ARR_ITERS, 2 * w0), ("auction", 0, w0), ("auction", 0, 2 * w0),
                       ("auction", 0, 4 * w0)]
            if args.tiny:  # interpreted kernels are slow: one configuration of each
                configs = [configs[0], configs[4]]
            for algo, arr, warps in dict.fromkeys(configs):
                if not budget.allows(cell + 2 * budget.slack):
                    print(f"| {s} | {algo} | {arr} | {warps} | skipped ({budget.left():.0f} s left) | | | | |")
                    continue
                agg = {"arr_bids": 0, "paths": 0, "steps": 0, "problems": 0, "fallback": 0}

                def fn(c, st, arr=arr, warps=warps, agg=agg, algo=algo):
                    inner: dict = {}
                    _, v = solve_exact_triton(c, arr_iters=arr, num_warps=warps, algorithm=algo,
                                              stats=inner)
                    for k in agg:
                        agg[k] += inner.get(k, 0)
                    return v

                guarded(f"tune warm-up S={s} {algo}/{arr}/{warps}", lambda tk=tk, fn=fn: fn(costs_of(tk, pairs_of(2)), {}))
                for k in agg:
                    agg[k] = 0
                r = guarded(f"tune S={s} {algo}/{arr}/{warps}", lambda tk=tk, pairs=pairs, fn=fn, s=s: rate(
                    fn, tk, pairs, chunk_of(s), cell, device))
                if isinstance(r, str):
                    print(f"| {s} | {algo} | {arr} | {warps} | {r} | | | | |")
                    continue
                npb = max(agg["problems"], 1)
                print(f"| {s} | {algo} | {arr} | {warps} | {fmt(r[0])} | {agg['arr_bids'] / npb:.1f} | "
                      f"{agg['paths'] / npb:.1f} | {agg['steps'] / npb:.1f} | {agg['fallback']} |", flush=True)

    # -- 5. suggested auto table ---------------------------------------------------------------
    print("\n## Suggested `CUDA_EXACT_TABLE` (fastest solver within 1e-6 of scipy, N = "
          f"{max(ns)})\n")
    rows = []
    for s in table_s:
        ok = [(rates[(s, max(ns), k)], k) for k in names
              if (s, max(ns), k) in rates and gaps.get((s, k), 1.0) <= 1e-6]
        if ok:
            rows.append((s, max(ok)[1]))
    if device.type != "cuda":
        print("(CPU rehearsal: 'tla' runs its scipy fallback here; not a measurement)\n")
    if rows:
        rows[-1] = (1 << 30, rows[-1][1])
        print("```python\nCUDA_EXACT_TABLE = (" + ", ".join(
            f"({'1 << 30' if s == 1 << 30 else s}, {k!r})" for s, k in rows) + ",)\n```")
    else:
        print("(no complete measurement)")
    print(f"\ntotal {budget.seconds - budget.left():.0f} s of {args.budget:.0f} s budget; {load()}")
    if ERRORS:
        print("\n## Errors\n\n```")
        for e in ERRORS:
            print(e)
        print("```")
    return 0


def cli_section(tk: torch.Tensor, device: torch.device, cpu_rate: float | None, budget: Budget) -> None:
    """``python -m semrsm rsm --tokens T --device D`` for D = the device and the CPU: wall time of
    the whole process (imports included), the compute seconds the CLI reports, and the largest
    difference between the two semantic RSMs."""
    import re
    import subprocess
    import tempfile

    n, s = tk.shape[0], tk.shape[1]
    npairs = n * (n - 1) // 2
    print(f"\n## The CLI, `python -m semrsm rsm --tokens T --device D` (exact, cosine), N = {n}, S = {s}\n")
    print("| device | wall s (process) | compute s (reported) | pairs/s (compute) | max abs difference to the GPU RSM |")
    print("|---|---|---|---|---|")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens.npy"
        np.save(tokens, tk.float().cpu().numpy())
        results = {}
        for dev in dict.fromkeys([str(device), "cpu"]):
            need = 30.0 if dev != "cpu" else 30.0 + (1.5 * npairs / cpu_rate if cpu_rate else 120.0)
            if not budget.allows(need + budget.slack):
                print(f"| {dev} | skipped (needs ~{need:.0f} s, {budget.left():.0f} s left) | | | |")
                continue
            out = Path(tmp) / f"{dev.replace(':', '_')}.npz"
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "semrsm", "rsm", "--tokens", str(tokens), "--out",
                                   str(out), "--device", dev], cwd=root, env=env, capture_output=True,
                                  text=True, timeout=max(need * 2, 60))
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                print(f"| {dev} | failed ({proc.returncode}): {proc.stderr.strip()[-200:]} | | | |")
                continue
            m = re.search(r"\(([0-9.]+) s\)\s*$", proc.stdout.strip())
            secs = float(m.group(1)) if m else float("nan")
            results[dev] = np.load(out)["semantic"]
            diff = (f"{np.abs(results[dev] - results[str(device)]).max():.1e}"
                    if str(device) in results and dev != str(device) else "-")
            print(f"| {dev} | {wall:.1f} | {secs:.2f} | {fmt(npairs / secs)} | {diff} |", flush=True)


def scipy_values(costs: torch.Tensor) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment

    out = []
    for x in costs.detach().cpu().double().numpy():
        r, col = linear_sum_assignment(x, maximize=True)
        out.append(x[r, col].sum())
    return np.array(out)


def scipy_rate(tok: torch.Tensor, pairs: np.ndarray, seconds: float) -> float:
    from scipy.optimize import linear_sum_assignment

    c = costs_of(tok, pairs).detach().cpu().double().numpy()
    t0 = time.perf_counter()
    done = 0
    for x in c:
        linear_sum_assignment(x, maximize=True)
        done += 1
        if time.perf_counter() - t0 > seconds:
            break
    return done / (time.perf_counter() - t0)


def quality_section(tk: torch.Tensor, q: int, windows: tuple[int, ...], device: torch.device,
                    budget: Budget) -> None:
    from semrsm.matching.registry import gpu_usable

    pairs = np.stack([np.arange(q), np.arange(1, q + 1)], 1)
    c = costs_of(tk, pairs)
    rn, cn = tk[:q].norm(dim=2), tk[1:q + 1].norm(dim=2)
    c64 = c.detach().to("cpu", torch.float64).numpy()
    t0 = time.perf_counter()
    _, opt = solve_batch(c64, "exact", backend="numba")
    t_exact = time.perf_counter() - t0
    s = c.shape[1]
    print(f"exact optimum by the numba CPU solver: {t_exact:.1f} s for {q} pairs\n")
    print("| matcher | backend | implementation | mean value / optimum | pairs/s |\n|---|---|---|---|---|")
    print(f"| exact | numba | numba | 1.0000 | {fmt(q / t_exact)} |")
    specs = [("greedy", {})] + [("batch_optimal", {"window": w}) for w in windows] + [("identity", {})]
    for matcher, params in specs:
        for backend in ("auto", "numba", "triton"):
            if backend == "triton" and (matcher != "batch_optimal" or not gpu_usable("triton", device)):
                continue
            impl = select_implementation(matcher, device, s, params, backend)
            if backend == "numba" and select_implementation(matcher, device, s, params) == "numba":
                continue  # same as the auto row
            if not budget.allows(budget.slack):
                print(f"| {matcher} | {backend} | skipped: {budget.left():.0f} s left | | |")
                continue
            label = matcher + (f" (window {params['window']})" if params else "")
            src = c if backend != "numba" else c64

            def run(src=src, matcher=matcher, params=params, backend=backend):
                sync(device)
                t1 = time.perf_counter()
                _, v = solve_batch(src, matcher, row_norms=rn, col_norms=cn, backend=backend, **params)
                sync(device)
                return v, time.perf_counter() - t1

            r = guarded(f"quality {label} {backend}", run)
            if isinstance(r, str):
                print(f"| {label} | {backend} | {impl} | {r} | |")
                continue
            v, dt = r
            print(f"| {label} | {backend} | {impl} | {float(np.mean(v / opt)):.4f} | {fmt(q / dt)} |",
                  flush=True)
    print()


if __name__ == "__main__":
    raise SystemExit(main())
