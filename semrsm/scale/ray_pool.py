"""Ray: connecting to a cluster, the resources of a task, and running many tasks.

:class:`RayPool` connects (or starts a local Ray), decides what one task asks for — one GPU
when the cluster has GPUs, one CPU otherwise — and checks that some node can run it, then
runs tasks with a bounded number in flight, handing each result back in the caller's
thread as soon as it is finished. Ray retries a task whose worker or node died
(``max_retries``); an exception of the caller's handler (an interrupted run) cancels the
tasks still queued or running. Tiles (:mod:`semrsm.scale.tiled`) and search re-ranking
(:mod:`semrsm.scale.search`) run on it.

``ray`` is imported inside the functions here, never at import time: ``import semrsm`` and
the app do not need it.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from semrsm.matching.scheduling import CancelLike, check_cancel

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: seconds to wait for a TCP connection to a cluster's address before saying it is unreachable
CONNECT_TIMEOUT_S = 5.0
_POLL_S = 1.0


def import_ray() -> Any:
    """``import ray``, with Ray's usage statistics off unless the user turned them on.

    Raises
    ------
    ValueError
        Ray is not installed (the message says how to install it).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as err:
        raise ValueError(
            "ray: Ray is not installed; install it with `pip install ray` (or run without "
            "--ray / ray=...: tiles then run in this process)"
        ) from err
    return ray


def split_address(address: str) -> tuple[str, int] | None:
    """``"host:port"`` or ``"ray://host:port"`` → (host, port); None for "auto"/"local".

    Raises
    ------
    ValueError
        Not of the form host:port with a port in 1..65535.
    """
    if address in ("auto", "local"):
        return None
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"ray: address {address!r} is not of the form host:port (e.g. 10.0.0.5:6379, "
            "ray://head:10001), 'auto' (a running cluster) or 'local' (a new one on this machine)"
        )
    return host, int(port)


def _check_reachable(address: str, host: str, port: int) -> None:
    """Fail fast (seconds, not Ray's minutes of retries) when nothing listens at the address."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise ValueError(
            f"ray: cannot reach a Ray cluster at {address!r} ({why}); start one with "
            "`ray start --head --port=6379` on the head node, check the address and the "
            "firewall (docs/SCALE.md), or leave out the address to start Ray on this machine"
        ) from err


_C = TypeVar("_C", bound="Closing")


class Closing:
    """Base of what holds a resource until :meth:`close` (a Ray connection, a pool, a tile
    executor): ``with obj:`` closes it on the way out, whatever happens."""

    def close(self) -> None:
        """Release what the object holds (nothing here)."""

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RayConnection(Closing):
    """A connection to a Ray cluster, closed (``ray.shutdown``) only if it was opened here.

    Parameters
    ----------
    address : True (an already connected Ray, else Ray's default: ``$RAY_ADDRESS``, a
        cluster started with ``ray start`` on this machine, else a new local one), "auto"
        (a running cluster), "local" (a new Ray on this machine, bound to 127.0.0.1),
        "host:port" or "ray://host:port".

    Raises
    ------
    ValueError
        Ray not installed, a malformed or unreachable address, or Ray already connected to
        another cluster in this process.
    """

    def __init__(self, address: str | bool = True):
        target = None if address is True else str(address)
        hostport = split_address(target) if target is not None else None
        if (hostport and hostport[0] in _LOOPBACK) or target == "local":
            # Ray rewrites 127.0.0.1 to the machine's network address, where a cluster bound
            # to 127.0.0.1 does not listen; this makes a driver on this machine use loopback.
            if "ray" not in sys.modules:
                os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        if hostport is not None:
            _check_reachable(target, *hostport)
        ray = import_ray()
        self.ray = ray
        self.owned = False
        if ray.is_initialized():
            current = ray.get_runtime_context().gcs_address
            if target not in (None, "auto") and (hostport is None or _norm(hostport) != _norm_str(current)):
                raise ValueError(
                    f"ray: this process is already connected to the Ray cluster at {current}; "
                    "pass ray=True to use it, or ray.shutdown() first"
                )
            self.address = current
            return
        kwargs: dict[str, Any] = {"logging_level": "WARNING", "log_to_driver": False}
        if target == "local":
            kwargs["include_dashboard"] = False
        try:
            ray.init(address=target, **kwargs)
        except ConnectionError as err:
            raise ValueError(
                f"ray: no Ray cluster found at {target or 'the default address'} ({err}); "
                "start one with `ray start --head` or pass an address (docs/SCALE.md)"
            ) from err
        self.owned = True
        self.address = ray.get_runtime_context().gcs_address

    def close(self) -> None:
        """Disconnect if this object connected (a local Ray it started stops with it)."""
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
        self.owned = False


def _norm(hostport: tuple[str, int]) -> str:
    host, port = hostport
    return f"{'127.0.0.1' if host in _LOOPBACK else host}:{port}"


def _norm_str(address: str) -> str:
    hp = split_address(address)
    return _norm(hp) if hp else address


def _alive_nodes(ray: Any) -> list[dict[str, float]]:
    return [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]


def _fits(res: dict[str, float], cpus: float, gpus: float) -> int:
    """How many tiles at once a node with resources ``res`` can run."""
    by_cpu = int(res.get("CPU", 0) // cpus) if cpus > 0 else 10**9
    by_gpu = int(res.get("GPU", 0) // gpus) if gpus > 0 else 10**9
    return min(by_cpu, by_gpu)


def _describe(nodes: list[dict[str, float]]) -> str:
    if not nodes:
        return "no node is alive"
    parts = [f"{res.get('CPU', 0):g} CPU / {res.get('GPU', 0):g} GPU" for res in nodes]
    return f"{len(nodes)} node(s): " + ", ".join(parts[:8]) + (" …" if len(parts) > 8 else "")


class RayPool(Closing):
    """Tasks on a connected Ray cluster, with the resources one task asks for.

    Parameters
    ----------
    address : see :class:`RayConnection`.
    device : "auto" (a GPU per task when the cluster has GPUs), "cpu" or "cuda".
    gpus_per_task, cpus_per_task : resources one task asks for; None: 1 GPU (and 1 CPU)
        when the cluster has GPUs, else 1 CPU.
    resource_timeout : seconds to wait for a node that can run a task (at the start, or
        after the cluster lost such nodes) before giving up; raise it for autoscaling
        clusters that start from zero workers.

    Attributes
    ----------
    device_kind : "cpu" or "cuda", where the tasks compute.
    slots : tasks the cluster can run at once.
    options : the task's resource options (``num_cpus``, ``num_gpus``).

    Raises
    ------
    ValueError
        See :class:`RayConnection`; and no node of the cluster has the resources a task
        asks for within ``resource_timeout`` (e.g. GPUs asked, none there).
    """

    def __init__(
        self,
        address: str | bool = True,
        *,
        device: str = "auto",
        gpus_per_task: float | None = None,
        cpus_per_task: float | None = None,
        resource_timeout: float = 30.0,
    ):
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device: with Ray use 'auto', 'cpu' or 'cuda', got {device!r}")
        for name, v in (("gpus per task", gpus_per_task), ("cpus per task", cpus_per_task)):
            if v is not None and not v >= 0:
                raise ValueError(f"{name}: must be at least 0, got {v}")
        self.conn = RayConnection(address)
        self.ray = self.conn.ray
        self.resource_timeout = float(resource_timeout)
        try:
            gpus = self._gpus(device, gpus_per_task)
            cpus = 1.0 if cpus_per_task is None else float(cpus_per_task)
            if cpus == 0 and gpus == 0:
                raise ValueError("a task needs a CPU or a GPU: CPUs and GPUs per task are both 0")
            self.options = {"num_cpus": cpus, "num_gpus": gpus}
            self.device_kind = "cuda" if gpus > 0 else "cpu"
            self.slots = self._wait_for_slots()
        except BaseException:
            self.conn.close()
            raise

    def _gpus(self, device: str, gpus_per_task: float | None) -> float:
        if device == "cpu":
            if gpus_per_task:
                raise ValueError("device='cpu' with GPUs per task > 0: pick one")
            return 0.0
        if gpus_per_task is not None:
            if device == "cuda" and gpus_per_task == 0:
                raise ValueError("device='cuda' needs GPUs per task > 0 (or None)")
            return float(gpus_per_task)
        if device == "cuda":
            return 1.0
        has_gpu = any(res.get("GPU", 0) >= 1 for res in _alive_nodes(self.ray))
        return 1.0 if has_gpu else 0.0

    def _need(self) -> str:
        c, g = self.options["num_cpus"], self.options["num_gpus"]
        return " and ".join(p for p in (f"{c:g} CPU" if c else "", f"{g:g} GPU" if g else "") if p)

    def _slots(self) -> tuple[int, list[dict[str, float]]]:
        nodes = _alive_nodes(self.ray)
        c, g = self.options["num_cpus"], self.options["num_gpus"]
        return sum(_fits(res, c, g) for res in nodes), nodes

    def _wait_for_slots(self) -> int:
        deadline = time.monotonic() + self.resource_timeout
        while True:
            slots, nodes = self._slots()
            if slots > 0:
                return slots
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"ray: no node of the cluster at {self.conn.address} has {self._need()} for "
                    f"a task ({_describe(nodes)}; waited {self.resource_timeout:g} s). Add such "
                    "nodes, or ask for less: device='cpu' / --device cpu runs on CPUs"
                )
            time.sleep(0.5)

    def put(self, value: Any) -> Any:
        """``ray.put``: the value once in the object store; pass the reference to tasks."""
        return self.ray.put(value)

    def map(
        self,
        fn: Callable[..., Any],
        jobs: Sequence[tuple[Hashable, tuple[Any, ...]]],
        on_result: Callable[[Hashable, Any], None],
        *,
        max_retries: int = 3,
        cancel: CancelLike = None,
    ) -> None:
        """Run ``fn(*args)`` as one task per job; call ``on_result(key, value)`` in this
        thread as each one finishes (in any order).

        Parameters
        ----------
        fn : a module-level function (workers import it by name).
        jobs : ``(key, args)`` pairs; object references in ``args`` are resolved by Ray.
        on_result : receives each result; an exception it raises stops the run (the tasks
            still queued or running are cancelled) and propagates.
        max_retries : retries of a task whose worker or node died (an exception raised by
            ``fn`` itself is not retried: it would fail again).
        cancel : a threading.Event or callable; raises :class:`semrsm.Cancelled` once set.

        Raises
        ------
        RuntimeError
            A task failed for good (after its retries), or the cluster lost every node that
            can run a task for longer than ``resource_timeout``.
        """
        ray = self.ray
        remote = ray.remote(fn).options(
            **self.options, max_retries=int(max_retries), retry_exceptions=False,
        )
        queue = list(jobs)
        queue.reverse()  # pop() from the end: jobs start in the given order
        pending: dict[Any, Hashable] = {}
        limit = max(2, 2 * self.slots)  # a few queued per slot: no idle worker, quick cancel
        starved_since: float | None = None
        try:
            while queue or pending:
                check_cancel(cancel)
                while queue and len(pending) < limit:
                    key, args = queue.pop()
                    pending[remote.remote(*args)] = key
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                if not ready:
                    starved_since = self._check_starved(starved_since, len(pending))
                    continue
                starved_since = None
                for ref in ready:
                    key = pending.pop(ref)
                    try:
                        value = ray.get(ref)
                    except ray.exceptions.RayError as err:
                        raise RuntimeError(
                            f"task {key} failed on the Ray cluster (after up to {max_retries} "
                            f"retries): {_short(err)}"
                        ) from err
                    on_result(key, value)
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - best effort: the task may have finished
                    pass

    def _check_starved(self, since: float | None, pending: int) -> float | None:
        """Raise when no node can run the pending tasks for longer than ``resource_timeout``."""
        slots, nodes = self._slots()
        if slots > 0:
            return None
        now = time.monotonic()
        if since is None:
            return now
        if now - since > self.resource_timeout:
            raise RuntimeError(
                f"ray: the cluster has no node left with {self._need()} for the {pending} "
                f"pending task(s) ({_describe(nodes)}, for {self.resource_timeout:g} s); "
                "finished results are kept: rerun to resume"
            )
        return since

    def close(self) -> None:
        self.conn.close()


def _short(err: BaseException, limit: int = 400) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " …"


def task_threads(options: dict[str, float]) -> int | None:
    """CPU threads a task may use: its CPUs (a task of 1 CPU must not take the whole node
    with numba's and torch's default of one thread per core); None for GPU tasks."""
    if options.get("num_gpus", 0):
        return None
    return max(1, int(options.get("num_cpus", 1)))


def limit_threads(threads: int | None) -> None:
    """Inside a task: torch's and the CPU solvers' threads to ``threads`` (None: unchanged)."""
    if threads is None:
        return
    import numba

    torch.set_num_threads(threads)
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def as_tensor(arr: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    """A tensor over an object-store array (read-only, zero-copy on CPU), on ``device``."""
    if arr is None:
        return None
    with warnings.catch_warnings():
        # arrays from the object store are read-only; the tile code only reads them
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(arr)
    return t.to(device)
