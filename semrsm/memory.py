"""The memory budget: a computation's peak is estimated from its sizes and refused early.

RSMs grow as N² (the results, the pair indices, the kernels' temporaries) and cost
matrices as S² per pair, so a mistaken or hostile size (N = 60,000 images, S = 60,000
positions, a file header claiming 373 GiB) would ask for tens of GiB and take the
machine down. Every entry point (:func:`semrsm.semantic_rsm`, :func:`semrsm.spatial_rsm`,
:func:`semrsm.match_pair`, ``python -m semrsm``) first estimates its peak from N, S, C and
its options, then raises :class:`MemoryLimitError` (a ``ValueError``) when the estimate
is above the budget, before anything large is allocated. The budget is, first found:

* the call's ``max_memory=`` (bytes, or a size such as ``"12G"``);
* ``$SEMRSM_MAX_MEMORY`` (same forms: ``16000000000``, ``500M``, ``16G``, ``1.5GiB``);
* ``min(8 GiB, half of the memory available when the call starts)``, where *available*
  is ``MemAvailable`` of ``/proc/meminfo``, or the cgroup's limit minus its usage when
  that is lower (containers); 8 GiB where neither can be read.

This module imports neither torch nor numpy.
"""

from __future__ import annotations

import decimal
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "MAX_MEMORY_ENV",
    "MemoryEstimate",
    "MemoryLimitError",
    "available_memory",
    "check_memory",
    "format_bytes",
    "memory_budget",
    "parse_memory",
]

GIB = 2**30
#: the budget's ceiling when neither ``max_memory=`` nor the variable is given
DEFAULT_MAX_MEMORY = 8 * GIB
MAX_MEMORY_ENV = "SEMRSM_MAX_MEMORY"
_MAX_SETTING = 2**60  # a bound on what a setting may say, far above any machine
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
           "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_CGROUP_FILES = (  # (limit, usage): cgroup v2, then v1
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


class MemoryLimitError(ValueError):
    """A computation whose estimated peak memory is above the budget; nothing was allocated.

    Attributes
    ----------
    estimate : int, the estimated peak in bytes.
    limit : int, the budget in bytes.
    """

    def __init__(self, message: str, estimate: int, limit: int):
        super().__init__(message)
        self.estimate = estimate
        self.limit = limit


@dataclass(frozen=True)
class MemoryEstimate:
    """The peak extra memory of a computation, as the parts that are alive at its peak.

    Attributes
    ----------
    parts : dict description → bytes (the largest parts name the way around a refusal).
    """

    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """The estimated peak in bytes: the sum of the parts."""
        return int(sum(self.parts.values()))

    def largest(self, count: int = 3) -> list[tuple[str, int]]:
        """The ``count`` largest non-zero parts, largest first."""
        ranked = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return [(k, v) for k, v in ranked[:count] if v > 0]

    def __add__(self, other: MemoryEstimate) -> MemoryEstimate:
        parts = dict(self.parts)
        for k, v in other.parts.items():
            parts[k] = parts.get(k, 0) + v
        return MemoryEstimate(parts)


def format_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KiB"``; ``3 * 2**30`` → ``"3.0 GiB"``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover - the loop always returns


def parse_memory(value: int | float | str, what: str = "max_memory") -> int:
    """A memory size in bytes: a positive number, or text ``"16000000000"``, ``"500M"``,
    ``"16G"``, ``"1.5GiB"`` (k/M/G/T are powers of 1000, Ki/Mi/Gi/Ti of 1024).

    Raises
    ------
    ValueError
        Not a positive size, or above 2**60 bytes; the message names ``what``.
    """
    forms = "give bytes or a size such as 500M, 16G or 1.5GiB"
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a memory size; {forms}")
    if isinstance(value, int | float):
        number = decimal.Decimal(value) if value == value and abs(value) != float("inf") else None
    else:
        m = re.fullmatch(r"\s*([0-9]{1,20}(?:\.[0-9]{0,20})?)\s*([kKmMgGtT]i?)?[bB]?\s*", str(value))
        number = decimal.Decimal(m.group(1)) * _SUFFIX[(m.group(2) or "").lower()] if m else None
    if number is None:
        raise ValueError(f"{what}: {str(value)[:40]!r} is not a memory size; {forms}")
    if not 1 <= number <= _MAX_SETTING:
        raise ValueError(f"{what}: {str(value)[:40]!r} must lie between 1 byte and 2**60 bytes")
    return int(number)


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) reads as None


def available_memory() -> int | None:
    """Bytes the process can still take now, or None when the system does not say.

    ``MemAvailable`` of ``/proc/meminfo``, lowered to the cgroup's ``limit − usage`` where
    a container sets a limit (cgroup v2 or v1).
    """
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in _CGROUP_FILES:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < _MAX_SETTING:
            found.append(max(0, limit - usage))
            break
    return min(found) if found else None


def memory_budget(max_memory: int | float | str | None = None) -> tuple[int, str]:
    """The budget in bytes and where it comes from (for messages).

    Parameters
    ----------
    max_memory : the call's own limit (bytes or size text), or None for
        ``$SEMRSM_MAX_MEMORY``, else ``min(8 GiB, half the available memory)``.

    Raises
    ------
    ValueError
        ``max_memory`` or the variable is not a size (the message says which and the forms).
    """
    if max_memory is not None:
        return parse_memory(max_memory), "max_memory"
    env = os.environ.get(MAX_MEMORY_ENV)
    if env is not None and env.strip():
        return parse_memory(env, MAX_MEMORY_ENV), f"${MAX_MEMORY_ENV}"
    free = available_memory()
    if free is None:
        return DEFAULT_MAX_MEMORY, "the default limit of 8 GiB"
    budget = min(DEFAULT_MAX_MEMORY, free // 2)
    return budget, f"the default limit: min(8 GiB, half the {format_bytes(free)} available now)"


def check_memory(
    what: str,
    estimate: MemoryEstimate,
    ways_around: list[str],
    max_memory: int | float | str | None = None,
) -> None:
    """Raise :class:`MemoryLimitError` when ``estimate`` is above the budget.

    Parameters
    ----------
    what : the computation, e.g. ``"semantic_rsm of N = 60,000 images (S = 4, C = 2)"``.
    estimate : its peak; the message lists its largest parts.
    ways_around : what the caller can change, most useful first; raising the limit
        (``max_memory=`` / ``$SEMRSM_MAX_MEMORY``) is always appended.
    max_memory : as :func:`memory_budget`.
    """
    limit, source = memory_budget(max_memory)
    total = estimate.total
    if total <= limit:
        return
    parts = ", ".join(f"{name} {format_bytes(b)}" for name, b in estimate.largest())
    need = format_bytes(total * 1.25).replace(" ", "")  # head-room over the estimate
    ways = [*ways_around, f"or, if the machine has the memory, raise the limit: "
            f"{MAX_MEMORY_ENV}={need} (max_memory= in Python)"]
    raise MemoryLimitError(
        f"{what} would need about {format_bytes(total)} of memory ({parts}), over the limit "
        f"of {format_bytes(limit)} ({source}); nothing was computed. To fit: "
        + "; ".join(ways),
        total,
        limit,
    )
