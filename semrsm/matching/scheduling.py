"""Fair, cancellable turns on the CPU solver, shared by every thread of the process.

The numba solvers use every core and numba's default threading layer must not be entered
from two threads at once, so CPU solves run one at a time. A plain lock made one long (or
stuck) job stall every other session of a Streamlit server. Here instead:

* work is cut into **slices** of about :data:`SLICE_SECONDS` (the number of pairs per slice
  adapts to the measured speed of each matcher and size), and each slice takes a **turn**;
* turns are served **first come, first served** (a ticket queue), so two sessions that both
  have work alternate slice by slice and a short job waits at most one slice per job ahead;
* every wait and every slice checks for **cancellation**: the current thread's
  :func:`cancel_scope` (an event or a callable), a process-wide :func:`request_shutdown`,
  or, in a daemon thread, the interpreter shutting down (the main thread has ended: a
  server stopped by SIGTERM) raise :class:`Cancelled` within one slice;
* an optional **timeout** bounds the wait for a turn (:class:`SolverBusy`).

Worker processes were not needed: with the inputs validated (no overflow) and the exact
solver capped, every slice ends, and threads start instantly, whereas a fresh worker that
imports torch and numba costs seconds before the first heatmap (docs/FAULTS.md).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

#: Target wall time of one slice of CPU solving, in seconds. Short enough that another
#: session (or a cancel request) gets its turn within about a second.
SLICE_SECONDS = 0.25
#: How often a waiting thread re-checks cancellation, in seconds.
POLL_SECONDS = 0.05

CancelLike = threading.Event | Callable[[], bool] | None

_SHUTDOWN = threading.Event()
_LOCAL = threading.local()


class Cancelled(RuntimeError):
    """A computation was cancelled: its cancel event was set, its cancel callable returned
    True, or the process is shutting down. Nothing partial is returned or cached."""


class SolverBusy(TimeoutError):
    """No turn on the CPU solver within the requested timeout."""


def request_shutdown() -> None:
    """Cancel every running and future solve of this process (for a server that stops)."""
    _SHUTDOWN.set()


def _shutting_down() -> bool:
    # While the interpreter finalises (after SIGTERM stopped a server's main loop) the main
    # thread is no longer alive, but daemon threads (Streamlit's script threads) still run
    # until they next need the GIL; they would be dropped anyway, so stop them now.
    # Non-daemon threads keep computing: the interpreter waits for them.
    if _SHUTDOWN.is_set():
        return True
    return threading.current_thread().daemon and not threading.main_thread().is_alive()


def _is_set(cancel: CancelLike) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def check_cancel(cancel: CancelLike = None) -> None:
    """Raise :class:`Cancelled` if ``cancel``, the current :func:`cancel_scope` or the
    process-wide shutdown says so."""
    if _shutting_down():
        raise Cancelled("cancelled: the process is shutting down")
    if _is_set(cancel):
        raise Cancelled("cancelled on request")
    for scoped in getattr(_LOCAL, "scopes", ()):
        if _is_set(scoped):
            raise Cancelled("cancelled on request")


@contextlib.contextmanager
def cancel_scope(cancel: CancelLike) -> Iterator[None]:
    """Make every solve started by this thread inside the block cancellable by ``cancel``.

    Parameters
    ----------
    cancel : threading.Event, callable returning bool, or None
        Set the event (from any thread) or make the callable return True to cancel; the
        solve raises :class:`Cancelled` within about :data:`SLICE_SECONDS` (or at once
        while it waits for its turn). None adds nothing. Scopes nest.
    """
    if cancel is not None and not isinstance(cancel, threading.Event) and not callable(cancel):
        raise ValueError(
            f"cancel: expected a threading.Event or a callable returning bool, got "
            f"{type(cancel).__name__}"
        )
    scopes = getattr(_LOCAL, "scopes", None)
    if scopes is None:
        scopes = _LOCAL.scopes = []
    scopes.append(cancel)
    try:
        yield
    finally:
        scopes.pop()


class FairTurns:
    """A first-come-first-served, cancellable, re-entrant lock.

    ``with turns.turn(timeout=...):`` waits for this thread's turn (re-checking
    cancellation every :data:`POLL_SECONDS`), holds it for the block, then hands it to the
    longest waiting thread. A thread that already holds the turn re-enters freely.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[int] = deque()
        self._holder: int | None = None
        self._depth = 0
        self._next = 0
        self._local = threading.local()  # the open ``with turns:`` blocks of each thread

    @contextlib.contextmanager
    def turn(self, cancel: CancelLike = None, timeout: float | None = None) -> Iterator[None]:
        """Hold the turn for the block.

        Raises
        ------
        Cancelled
            Cancelled while waiting (see :func:`check_cancel`).
        SolverBusy
            No turn within ``timeout`` seconds.
        """
        me = threading.get_ident()
        with self._cond:
            if self._holder == me:
                self._depth += 1
                reentered = True
            else:
                reentered = False
                ticket = self._next
                self._next += 1
                self._queue.append(ticket)
                deadline = None if timeout is None else time.monotonic() + timeout
                try:
                    while self._holder is not None or self._queue[0] != ticket:
                        check_cancel(cancel)
                        if deadline is not None and time.monotonic() > deadline:
                            raise SolverBusy(
                                f"the CPU solver stayed busy with other work for {timeout:g} s; "
                                "try again later or use fewer images"
                            )
                        self._cond.wait(POLL_SECONDS)
                except BaseException:
                    self._queue.remove(ticket)
                    self._cond.notify_all()
                    raise
                self._queue.popleft()
                self._holder = me
                self._depth = 1
        try:
            yield
        finally:
            with self._cond:
                if reentered:
                    self._depth -= 1
                else:
                    self._holder = None
                    self._depth = 0
                    self._cond.notify_all()

    def __enter__(self) -> FairTurns:
        """``with turns:`` is ``with turns.turn():`` (a drop-in for a ``threading.Lock``)."""
        ctx = self.turn()
        ctx.__enter__()
        stack = self._local.__dict__.setdefault("ctx", [])
        stack.append(ctx)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._local.ctx.pop().__exit__(*exc)

    def waiting(self) -> int:
        """How many threads wait for a turn (for tests and status lines)."""
        with self._cond:
            return len(self._queue)

    def run_sliced(
        self,
        solve: Callable[[slice], tuple[np.ndarray, np.ndarray]],
        batch: int,
        key: Any,
        *,
        cancel: CancelLike = None,
        timeout: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Solve items ``0 .. batch-1`` in slices of about :data:`SLICE_SECONDS`, one turn each.

        Parameters
        ----------
        solve : callable taking a ``slice`` of the batch, returning ``(perms, values)`` for it
            ((k, S) int64 and (k,) float64).
        batch : number of items.
        key : hashable describing the kind of work (e.g. ``(matcher, S)``); the measured
            speed per key sizes the next slices.
        cancel, timeout : as :meth:`turn`; cancellation is also checked before each slice.

        Returns
        -------
        perms, values : the slices' results concatenated along the batch axis.
        """
        parts_p, parts_v = [], []
        start = 0
        while start < batch or not parts_p:
            check_cancel(cancel)
            step = _step(key)
            stop = min(batch, start + step)
            with self.turn(cancel, timeout):
                t0 = time.perf_counter()
                p, v = solve(slice(start, stop))
                _record(key, stop - start, time.perf_counter() - t0)
            parts_p.append(p)
            parts_v.append(v)
            start = stop
        if len(parts_p) == 1:
            return parts_p[0], parts_v[0]
        return np.concatenate(parts_p), np.concatenate(parts_v)


# items per second measured per kind of work; slices are sized from it
_RATES: dict[Any, float] = {}
_RATES_LOCK = threading.Lock()


def _first_slice() -> int:
    """One item per solver thread: every core busy, and as short as a slice can be (an item,
    one assignment, cannot be split) while the speed of this kind of work is unknown."""
    try:
        import numba

        return max(1, int(numba.get_num_threads()))
    except Exception:  # noqa: BLE001 - numba missing or not initialised: be conservative
        return 1


def _step(key: Any) -> int:
    with _RATES_LOCK:
        rate = _RATES.get(key)
    if rate is None:
        return _first_slice()
    return max(1, int(rate * SLICE_SECONDS))


def _record(key: Any, items: int, seconds: float) -> None:
    if items <= 0:
        return
    rate = items / max(seconds, 1e-4)
    with _RATES_LOCK:
        old = _RATES.get(key)
        # smooth, and never grow more than 4x at once (the first slices include warm-up)
        new = rate if old is None else min(4 * old, 0.5 * old + 0.5 * rate)
        _RATES[key] = new


#: The one CPU solver of the process (see the module docstring).
CPU_SOLVER = FairTurns()

__all__ = [
    "CPU_SOLVER",
    "Cancelled",
    "FairTurns",
    "SLICE_SECONDS",
    "SolverBusy",
    "cancel_scope",
    "check_cancel",
    "request_shutdown",
]
