"""GPU benchmark of the batched assignment solvers (issue 6), one command.

    python bench/bench_gpu.py            # on a CUDA machine: the full table
    python bench/bench_gpu.py --smoke    # small version that runs on the CPU in about a minute

Prints markdown tables: pairs per second of ``torch-linear-assignment`` (optional,
``pip install torch-linear-assignment``; skipped with a message when missing), of this
project's batched auction (``semrsm.matching.gpu``), of a scipy loop (on a sample) and of
the fp32 cost-matrix products alone, at S = 49, 196, 784 for N = 64, 256, 1024 images
(pairs i <= j, capped per S by ``--max-pairs``); the largest relative gap to scipy's
optimum on a sample of pairs; greedy / Batch-Optimal quality at S = 3136; and the
end-to-end time of a 1,024-image semantic RSM at S = 196.

Features: ReLU activations of a random-init timm ``resnet18`` on crops of the photos that
scikit-image ships (no download): layer4 (S = 49), layer3 (196), layer2 (784),
layer1 (3136) at 224 px.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semrsm.matching.gpu import solve_batch_torch  # noqa: E402

LAYER_OF_STRIDE = {4: 1, 8: 2, 16: 3, 32: 4}  # timm resnet18 features_only index by stride
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "cat", "immunohistochemistry")


def photo_crops(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``n`` random crops (50-90 % of the short side) of scikit-image's bundled photos."""
    import skimage.data as skd
    from skimage.transform import resize

    photos = []
    for name in PHOTOS:
        try:
            im = np.asarray(getattr(skd, name)())
        except Exception:  # noqa: BLE001 - a photo that needs a download is just skipped
            continue
        if im.ndim == 2:
            im = np.stack([im] * 3, axis=-1)
        photos.append(im[..., :3])
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.float32)
    for k in range(n):
        im = photos[k % len(photos)]
        h, w = im.shape[:2]
        cs = int(min(h, w) * rng.uniform(0.5, 0.9))
        y, x = rng.integers(0, h - cs + 1), rng.integers(0, w - cs + 1)
        out[k] = (
            resize(
                im[y : y + cs, x : x + cs], (size, size), anti_aliasing=True, preserve_range=True
            )
            / 255.0
        )
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def resnet_tokens(n: int, image_size: int, device: torch.device) -> dict[int, torch.Tensor]:
    """(N, S, C) float32 ReLU tokens of resnet18 layers 1-4, keyed by S."""
    import timm

    torch.manual_seed(0)
    model = (
        timm.create_model(
            "resnet18", pretrained=False, features_only=True, out_indices=(1, 2, 3, 4)
        )
        .eval()
        .to(device)
    )
    x = photo_crops(n, image_size)
    feats: dict[int, list[torch.Tensor]] = {}
    with torch.no_grad():
        for lo in range(0, n, 64):
            xb = ((x[lo : lo + 64] - 0.45) / 0.225).to(device)
            for f in model(xb):
                tok = f.flatten(2).transpose(1, 2).contiguous()
                feats.setdefault(tok.shape[1], []).append(tok)
    return {s: torch.cat(v) for s, v in feats.items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pair_chunks(n: int, max_pairs: int, chunk: int):
    i, j = np.triu_indices(n)
    i, j = i[:max_pairs], j[:max_pairs]
    for lo in range(0, len(i), chunk):
        yield torch.from_numpy(i[lo : lo + chunk]), torch.from_numpy(j[lo : lo + chunk])


def costs_of(tok: torch.Tensor, ii: torch.Tensor, jj: torch.Tensor) -> torch.Tensor:
    ii, jj = ii.to(tok.device), jj.to(tok.device)
    return torch.bmm(tok[ii], tok[jj].transpose(1, 2))


def time_products(tok, n, max_pairs, chunk, device) -> tuple[float, int]:
    sync(device)
    t = time.perf_counter()
    done = 0
    for ii, jj in pair_chunks(n, max_pairs, chunk):
        c = costs_of(tok, ii, jj)
        done += len(c)
    sync(device)
    return done / (time.perf_counter() - t), done


def time_ours(tok, n, max_pairs, chunk, device, **params) -> tuple[float, int, dict]:
    agg = {"fallback": 0, "rounds": 0}
    sync(device)
    t = time.perf_counter()
    done = 0
    for ii, jj in pair_chunks(n, max_pairs, chunk):
        st: dict = {}
        _, v = solve_batch_torch(costs_of(tok, ii, jj), "exact", stats=st, **params)
        agg["fallback"] += st["fallback"]
        agg["rounds"] = max(agg["rounds"], st["rounds"])
        done += len(v)
    sync(device)
    return done / (time.perf_counter() - t), done, agg


def time_tla(tok, n, max_pairs, chunk, device) -> tuple[float, int] | str:
    try:
        from torch_linear_assignment import batch_linear_assignment
    except ImportError:
        return "not installed (pip install torch-linear-assignment)"
    sync(device)
    t = time.perf_counter()
    done = 0
    for ii, jj in pair_chunks(n, max_pairs, chunk):
        c = costs_of(tok, ii, jj)
        a = batch_linear_assignment(-c)  # it minimises
        c.gather(2, a[:, :, None].long()).double().sum((1, 2))
        done += len(c)
    sync(device)
    return done / (time.perf_counter() - t), done


def time_scipy(tok, n, max_pairs) -> tuple[float, int]:
    from scipy.optimize import linear_sum_assignment

    ii, jj = next(pair_chunks(n, max_pairs, max_pairs))
    c = costs_of(tok, ii, jj).double().cpu().numpy()
    t = time.perf_counter()
    for x in c:
        linear_sum_assignment(x, maximize=True)
    return len(c) / (time.perf_counter() - t), len(c)


def max_gap_to_scipy(tok, n, sample, device) -> float:
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(1)
    i, j = np.triu_indices(n)
    pick = rng.choice(len(i), size=min(sample, len(i)), replace=False)
    c = costs_of(tok, torch.from_numpy(i[pick]), torch.from_numpy(j[pick]))
    _, v = solve_batch_torch(c, "exact")
    worst = 0.0
    for x, val in zip(c.double().cpu().numpy(), v.cpu().numpy(), strict=True):
        r, col = linear_sum_assignment(x, maximize=True)
        opt = x[r, col].sum()
        worst = max(worst, abs(opt - val) / max(abs(opt), 1e-300))
    return worst


def fmt(x) -> str:
    if isinstance(x, str):
        return x
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny CPU-friendly version")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument(
        "--max-pairs",
        type=str,
        default="49:524800,196:131328,784:16384",
        help="pairs measured per S (first pairs in i<=j order)",
    )
    ap.add_argument(
        "--chunk",
        type=str,
        default="49:131072,196:32768,784:2048",
        help="pairs per solver call per S",
    )
    ap.add_argument("--gap-sample", type=int, default=64, help="pairs checked against scipy")
    ap.add_argument("--scipy-sample", type=int, default=100, help="pairs timed with scipy")
    ap.add_argument("--e2e-n", type=int, default=1024, help="images of the end-to-end RSM")
    ap.add_argument("--quality-pairs", type=int, default=8, help="pairs at S = 3136")
    args = ap.parse_args(argv)
    if args.smoke:
        args.n, args.image_size = [8, 16], 112
        args.max_pairs = "16:1000,49:1000,196:30"
        args.chunk = "16:1000,49:1000,196:30"
        args.gap_sample, args.scipy_sample, args.e2e_n, args.quality_pairs = 8, 20, 12, 2
    device = torch.device(args.device)
    torch.set_num_threads(min(torch.get_num_threads(), 16))
    max_pairs = {int(k): int(v) for k, v in (kv.split(":") for kv in args.max_pairs.split(","))}
    chunks = {int(k): int(v) for k, v in (kv.split(":") for kv in args.chunk.split(","))}
    dev_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    print(
        f"# bench_gpu: {dev_name}, torch {torch.__version__}, "
        f"{datetime.datetime.now().isoformat(timespec='minutes')}\n"
    )

    t = time.perf_counter()
    n_max = max(args.n + [args.e2e_n])
    tokens = resnet_tokens(n_max, args.image_size, device)
    print(
        f"features: resnet18 (random init) on {n_max} photo crops, {args.image_size} px, "
        f"{time.perf_counter() - t:.1f} s; token shapes "
        + ", ".join(f"S={s}xC={v.shape[2]}" for s, v in sorted(tokens.items()))
        + "\n"
    )
    sizes = sorted(s for s in tokens if s in max_pairs)

    print(
        "| S x C | N | pairs timed | torch-linear-assignment | semrsm auction | scipy loop "
        "(sample) | products fp32 | ours / TLA | max rounds | fallback |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in sizes:
        for n in args.n:
            tok = tokens[s][:n]
            mp, ch = max_pairs[s], chunks[s]
            # warm-up (allocator, kernels) on a few pairs
            solve_batch_torch(costs_of(tok, *next(pair_chunks(n, 8, 8))), "exact")
            ours, done, agg = time_ours(tok, n, mp, ch, device)
            tla = time_tla(tok, n, mp, ch, device)
            tla_s = tla if isinstance(tla, str) else fmt(tla[0])
            ratio = "-" if isinstance(tla, str) else f"{ours / tla[0]:.2f}x"
            sp, _ = time_scipy(tok, n, args.scipy_sample)
            prod, _ = time_products(tok, n, mp, ch, device)
            print(
                f"| {s} x {tok.shape[2]} | {n} | {done:,} | {tla_s} | {fmt(ours)} | {fmt(sp)} | "
                f"{fmt(prod)} | {ratio} | {agg['rounds']} | {agg['fallback']} |",
                flush=True,
            )

    print("\n| S | max relative gap to scipy's optimum (sampled pairs) |\n|---|---|")
    for s in sizes:
        n = min(args.n[-1], len(tokens[s]))
        print(
            f"| {s} | {max_gap_to_scipy(tokens[s][:n], n, args.gap_sample, device):.2e} "
            f"({min(args.gap_sample, n * (n + 1) // 2)} pairs) |",
            flush=True,
        )

    s_big = max(tokens)
    tok = tokens[s_big]
    q = args.quality_pairs
    c = costs_of(tok, torch.arange(q), torch.arange(1, q + 1))
    rn, cn = tok[:q].norm(dim=2), tok[1 : q + 1].norm(dim=2)
    sync(device)
    t = time.perf_counter()
    st: dict = {}
    _, ve = solve_batch_torch(c, "exact", stats=st)
    sync(device)
    rows = [("exact", 1.0, time.perf_counter() - t)]
    for name, params in [
        ("greedy", {}),
        ("batch_optimal", {"window": 64}),
        ("batch_optimal", {"window": 128}),
        ("batch_optimal", {"window": 256}),
        ("identity", {}),
    ]:
        t = time.perf_counter()
        _, v = solve_batch_torch(c, name, row_norms=rn, col_norms=cn, **params)
        sync(device)
        label = name + (f" (window {params['window']})" if params else "")
        rows.append((label, float((v / ve).mean()), time.perf_counter() - t))
    print(
        f"\nS = {s_big} x C = {tok.shape[2]}, {q} pairs (exact: {st['rounds']} rounds, "
        f"fallback {st['fallback']}):\n"
    )
    print("| matcher | mean value / optimum | pairs/s |\n|---|---|---|")
    for label, r, dt in rows:
        print(f"| {label} | {r:.4f} | {fmt(q / dt)} |")

    try:
        import semrsm

        semantic_rsm = semrsm.semantic_rsm
    except (ImportError, AttributeError) as e:
        print(f"\nend-to-end: semrsm.semantic_rsm not available ({e})")
        return 0
    s_e2e = 196 if 196 in tokens else sizes[-1]
    n = min(args.e2e_n, len(tokens[s_e2e]))
    tok = tokens[s_e2e][:n]
    sync(device)
    t = time.perf_counter()
    rsm = semantic_rsm(tok, kernel="cosine", matcher="exact", device=str(device))
    sync(device)
    dt = time.perf_counter() - t
    print(
        f"\nend-to-end semantic RSM: N = {n}, S = {s_e2e}, {n * (n + 1) // 2:,} pairs, "
        f"device={device}: {dt:.2f} s ({n * (n + 1) / 2 / dt:,.0f} pairs/s), "
        f"finite={bool(np.isfinite(rsm).all())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
