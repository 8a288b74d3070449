"""A progress line for long stages: input files done out of the total, documents so far and their rate.

Spark's own console bar shows tasks of the current stage only; this one follows the whole extraction (all its
jobs) in units users think in. Files are counted from Spark's status tracker as tasks finish; documents through
an accumulator the tasks add to (accumulators reach the driver when a task ends, so the counts move file by
file). On a terminal the line is redrawn in place; in a log, one line every `log_every` seconds.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType

from pyspark import Accumulator, SparkContext


class Progress:
    def __init__(self, sc: SparkContext, label: str, total_files: int, done_files: int = 0, log_every: float = 30.0):
        self.sc = sc
        self.label = label
        self.total = total_files
        self.already = done_files  # finished in an earlier, interrupted run
        self.documents: Accumulator[int] = sc.accumulator(0)
        self.tty = sys.stderr.isatty()
        self.interval = 1.0 if self.tty else log_every
        self.group = f"corpus-{label}-{id(self)}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.monotonic()

    def files_done(self) -> int:
        tracker = self.sc.statusTracker()
        done = 0
        for job in tracker.getJobIdsForGroup(self.group):
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info else []:
                stage_info = tracker.getStageInfo(stage)
                if stage_info is not None:
                    done += stage_info.numCompletedTasks
        return self.already + done

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        documents = self.documents.value
        return (
            f"corpus: {self.label}: {min(self.files_done(), self.total)}/{self.total} files, "
            f"{documents:,} documents, {documents / elapsed:,.1f} documents/s"
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
        if exc_type is None:
            print(("\r" if self.tty else "") + self.line(), file=sys.stderr, flush=True)
