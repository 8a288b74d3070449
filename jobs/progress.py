"""A progress line for long stages, in units users think in.

Extraction: input files done out of the total and documents so far, with their rate. Files are counted from
Spark's status tracker as tasks finish; documents from small counter files the tasks rewrite about once a second
(`TaskCounter`; accumulators reach the driver only when a task ends, which for one task per input file is far
too late). Other stages (dedup, tokenize): the Spark stage running and its tasks done out of its total.

Spark's own console bar is off (session.py), so the two never interleave; on a terminal the line is redrawn in
place, in a log one line is printed every `log_every` seconds.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

from pyspark import SparkContext

from corpus.io import storage


class TaskCounter:
    """Inside a task: the running count of documents of one input file, written to `folder/<index>` at most
    once a second (and at the end), for the driver's progress line."""

    def __init__(self, folder: str, index: int, every: float = 1.0) -> None:
        self.url = storage.join(folder, str(index))
        self.count = 0
        self.every = every
        self._last = 0.0

    def add(self, n: int) -> None:
        self.count += n
        if time.monotonic() - self._last >= self.every:
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        with contextlib.suppress(OSError):  # progress is best effort: never fail a task for it
            storage.write_text(self.url, str(self.count))


def read_counts(folder: str) -> int:
    """The sum of the counter files in `folder` (0 when there are none yet)."""
    total = 0
    for url in storage.list_files(folder):
        try:
            total += int(storage.read_text(url) or 0)
        except (OSError, ValueError):  # a file being replaced right now
            continue
    return total


class Progress:
    def __init__(
        self,
        sc: SparkContext,
        label: str,
        total_files: int | None = None,
        done_files: int = 0,
        documents: Callable[[], int] | None = None,
        log_every: float = 30.0,
    ) -> None:
        self.sc = sc
        self.label = label
        self.total = total_files
        self.already = done_files  # finished in an earlier, interrupted run
        self.documents = documents
        self.tty = sys.stderr.isatty()
        self.interval = 1.0 if self.tty else log_every
        self.group = f"corpus-{label}-{id(self)}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.monotonic()

    def _stages(self) -> list:
        tracker = self.sc.statusTracker()
        stages = []
        for job in tracker.getJobIdsForGroup(self.group):
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info else []:
                stage_info = tracker.getStageInfo(stage)
                if stage_info is not None:
                    stages.append(stage_info)
        return stages

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        stages = self._stages()
        if self.total is None:  # a stage of many Spark stages: the one running now
            active = [s for s in stages if s.numActiveTasks or s.numCompletedTasks < s.numTasks]
            if not active:
                return f"corpus: {self.label}: {len(stages)} Spark stage(s) done, {elapsed:,.0f} s"
            s = max(active, key=lambda s: s.stageId)
            return (
                f"corpus: {self.label}: Spark stage {len(stages)} ({s.name.split(' at ')[0]}): "
                f"{s.numCompletedTasks}/{s.numTasks} tasks, {elapsed:,.0f} s"
            )
        files = min(self.already + sum(s.numCompletedTasks for s in stages), self.total)
        earlier = f" ({self.already} in an earlier run)" if self.already else ""
        documents = self.documents() if self.documents else 0
        return (
            f"corpus: {self.label}: {files}/{self.total} files{earlier}, {documents:,} documents, "
            f"{documents / elapsed:,.1f} documents/s"
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                text = self.line()
            except Exception:  # the context may be stopping; progress is best effort
                return
            print(("\r" + text) if self.tty else text, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def __enter__(self) -> Progress:
        self.sc.setJobGroup(self.group, f"corpus {self.label}")
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if exc_type is not None:  # e.g. Ctrl-C: the context may be unusable; nothing to print either
            return
        self.sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        if self.total is not None:
            print(("\r" if self.tty else "") + self.line(), file=sys.stderr, flush=True)
        elif self.tty:
            print(file=sys.stderr, flush=True)
