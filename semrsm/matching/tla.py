"""Exact batched assignment with ``torch-linear-assignment`` (a public Triton solver).

``torch_linear_assignment.batch_linear_assignment`` runs one Triton program per problem
(a shortest-augmenting-path solver in the style of scipy's) on CUDA GPUs with compute
capability ≥ 8.0, and falls back to a scipy loop on the CPU. It *minimises*, so the
costs are negated; it compiles once per matrix shape (warm up before timing).

Its values are not certified here (it returns no duals); on the benchmark features they
agree with scipy's optimum to float32 rounding (see docs/GPU.md).
"""

from __future__ import annotations

import torch


def installed() -> bool:
    """Whether the ``torch-linear-assignment`` package can be imported."""
    try:
        import torch_linear_assignment  # noqa: F401
    except ImportError:
        return False
    return True


def available(device: torch.device | str) -> bool:
    """Whether the package runs its GPU kernel (not its scipy fallback) on ``device``."""
    device = torch.device(device)
    if device.type != "cuda" or not installed() or not torch.cuda.is_available():
        return False
    try:
        from torch_linear_assignment.assignment import _cuda_uses_triton

        return bool(_cuda_uses_triton(torch.empty(0, device=device)))
    except Exception:  # noqa: BLE001 - private helper of another package; be conservative
        return torch.cuda.get_device_capability(device) >= (8, 0)


def solve_exact_tla(
    costs: torch.Tensor, *, stats: dict | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal assignments of a batch (maximisation) with ``torch-linear-assignment``.

    Parameters
    ----------
    costs : torch.Tensor (B, S, S) float32 or float64, finite, any device (CPU: the
        package's scipy loop).
    stats : optional dict, filled with ``problems`` and ``fallback`` (always 0).

    Returns
    -------
    perms : (B, S) int64 on ``costs.device``; values : (B,) float64 gathered from ``costs``.

    Raises
    ------
    ValueError
        The package is not installed, or a bad shape.
    """
    if not installed():
        raise ValueError(
            "backend 'tla' needs the torch-linear-assignment package: "
            "pip install torch-linear-assignment (or use backend='auto')"
        )
    from torch_linear_assignment import batch_linear_assignment

    if costs.ndim != 3 or costs.shape[1] != costs.shape[2]:
        raise ValueError(f"costs: expected shape (B, S, S), got {tuple(costs.shape)}")
    b, s, _ = costs.shape
    if b == 0 or s == 0:
        perms = torch.zeros((b, s), dtype=torch.int64, device=costs.device)
    else:
        perms = batch_linear_assignment(-costs.detach()).to(torch.int64)
    values = costs.gather(2, perms[:, :, None]).to(torch.float64).sum(dim=(1, 2))
    if stats is not None:
        stats.update(problems=b, fallback=0)
    return perms, values


__all__ = ["available", "installed", "solve_exact_tla"]
