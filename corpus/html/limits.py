"""A per-call CPU-time budget that stops pathological documents without tying results to machine load.

datatrove gives each page 1 s of wall-clock time; on a busy machine that turns ordinary pages into "timeout"
drops (153 of 346 pages in one measured run), so the output depends on what else the machine was doing. CPU time
does not grow when other processes compete for the cores, so a budget in CPU seconds, set far above what real
pages need (about 0.02 s), stops only the pages that would otherwise hang a task.

The budget uses ``setitimer(ITIMER_PROF)``, whose SIGPROF handler raises `CpuTimeExceeded` in the main thread.
It derives from BaseException so that library code catching ``Exception`` cannot swallow it.
"""

from __future__ import annotations

import signal
import threading
from types import TracebackType


class CpuTimeExceeded(BaseException):
    """Raised inside a `cpu_budget` block when it used up its CPU seconds."""


_active = False


def _on_sigprof(signum: int, frame: object) -> None:
    if _active:
        raise CpuTimeExceeded()


class cpu_budget:
    """Context manager: raise `CpuTimeExceeded` if the block uses more than `seconds` of process CPU time.
    A no-op outside the main thread or where SIGPROF is unavailable, and when `seconds` is falsy."""

    _installed = False

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.enabled = bool(
            seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        )

    def __enter__(self) -> cpu_budget:
        global _active
        if self.enabled:
            if not cpu_budget._installed:
                signal.signal(signal.SIGPROF, _on_sigprof)
                cpu_budget._installed = True
            _active = True
            signal.setitimer(signal.ITIMER_PROF, float(self.seconds))  # type: ignore[arg-type]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        global _active
        if self.enabled:
            signal.setitimer(signal.ITIMER_PROF, 0)
            _active = False
