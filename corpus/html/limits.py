"""Bounds on the cost of one page: a CPU-time budget, and a scan that refuses pages lxml cannot parse in time.

A per-call CPU-time budget stops pathological documents without tying results to machine load.

datatrove gives each page 1 s of wall-clock time; on a busy machine that turns ordinary pages into "timeout"
drops (153 of 346 pages in one measured run), so the output depends on what else the machine was doing. CPU time
does not grow when other processes compete for the cores, so a budget in CPU seconds, set far above what real
pages need (about 0.02 s), stops only the pages that would otherwise hang a task.

The budget uses ``setitimer(ITIMER_PROF)``, whose SIGPROF handler raises `CpuTimeExceeded` in the main thread.
It derives from BaseException so that library code catching ``Exception`` cannot swallow it. A signal handler
runs only when the interpreter gets control back, so work inside one C call (lxml parsing a hostile page) escapes
it: the recipe therefore extracts in a sandboxed process under a kernel CPU limit as well (corpus.recipes.fineweb),
and `too_many_attributes` refuses, before parsing, the one shape known to make libxml2 superlinear: one element
with many distinct attributes (libxml2 checks each new attribute against all earlier ones: 20,000 take 1 s,
40,000 take 13 s, a million never finish), where real pages have at most a few dozen (70 in 617 pages measured).
"""

from __future__ import annotations

import re
import signal
import threading
from types import TracebackType

#: Attributes one element may have before the page is refused unparsed (libxml2 takes ~10 ms for 2,000).
MAX_ATTRIBUTES = 2000
#: Only tags at least this long can hold MAX_ATTRIBUTES attributes (each takes a space and a name character); a
#: tag ends at its ">" (a "<" followed by a letter in script or prose, with no ">" after it, is no tag).
_LONG_TAG = re.compile(r"<[A-Za-z][^<>]{" + str(2 * MAX_ATTRIBUTES) + ",}>")
_ATTRIBUTE = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]*))?""")


def too_many_attributes(html: str, limit: int = MAX_ATTRIBUTES) -> bool:
    """Whether an element of `html` has more than `limit` distinct attributes (a regex scan, about 0.5 ms per
    100 kB: most of it finding that no tag is long enough to matter). Distinct names, because libxml2's cost is in
    comparing each new name with the earlier ones, and because text mistaken for a tag (minified script with a
    `a<b ... c>d`) repeats its words: two real ccdev pages were refused when every word counted."""
    for tag in _LONG_TAG.finditer(html):
        names = {m.group(1).lower() for m in _ATTRIBUTE.finditer(tag.group(), 1)}  # from 1: after "<"
        if len(names) - 1 > limit:  # the element's own name is not an attribute
            return True
    return False


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
