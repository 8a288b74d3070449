"""Run risky C-library code (PDF parsing with PyMuPDF) on one document at a time in a disposable child process.

A PySpark Python worker lives long and runs many tasks; a segfault, an endless loop or a runaway allocation in
MuPDF must cost one document, not the worker. ``Sandbox(fn).run(payload, **kwargs)`` runs ``fn`` in a worker
process and returns an outcome instead of raising: `Ok`, `Timeout`, `MemoryLimit`, `Crashed` or `Failed`.

Design: a zygote. The parent starts a fresh interpreter (``sys.executable``, by fork+exec, so it is safe whatever
threads the parent has) that imports the heavy modules once (`preload` and fn's module) and then only forks
workers on request: a worker starts in milliseconds and shares the preloaded pages copy-on-write. We did not use
multiprocessing's forkserver: its server and preload list are process-wide, it re-imports the parent's ``__main__``
in every worker, and it can neither tell how a worker died nor kill one without racing pid reuse.

- Parent and zygote talk over a SOCK_SEQPACKET pair. For a worker the parent makes a stream socket pair and hands
  one end to the zygote (SCM_RIGHTS), which forks; the worker then talks to the parent directly, so a 256 MB PDF
  crosses one socket once (bytes travel as they are, anything else pickled).
- The zygote reaps a worker only when the parent asks ("end": SIGKILL to the worker's process group, which takes
  along whatever fn started, then waitpid), so a pid is never reused while the parent may name it, and the parent
  learns how the worker died.
- Limits: wall clock (the parent reads with a deadline, then has the worker killed); CPU time (RLIMIT_CPU, moved
  before each call to the worker's CPU time so far plus `cpu_limit`, rounded up: the kernel stops a worker that
  spins inside C code, which a signal handler in Python cannot); address space (RLIMIT_AS: the
  worker's size at fork plus `memory_limit`, as the preloaded modules already map an unknowable amount); recycling
  after `max_calls` calls or once the worker's RSS passes `max_rss` (MuPDF's caches grow). oom_score_adj is 1000
  in zygote and workers, so the kernel's OOM killer takes them before the parent.
- Cleanup: `close()` closes the control socket; the zygote sees EOF, kills and reaps its workers and exits. When the
  parent dies, even by SIGKILL, the kernel closes its sockets to the same effect. Workers also have
  PR_SET_PDEATHSIG=SIGKILL, bound to the single-threaded zygote. The zygote itself relies on EOF, not PDEATHSIG:
  that signal follows the *thread* that forked, and the parent's calling thread may be short-lived.

Linux only (prctl, /proc, SCM_RIGHTS). Not thread-safe: one Sandbox per thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import pickle
import resource
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn


@dataclass(frozen=True)
class Ok:
    value: Any


@dataclass(frozen=True)
class Timeout:
    seconds: float


@dataclass(frozen=True)
class CpuLimit:
    """The worker used up its CPU seconds (`cpu_limit`) and the kernel stopped it (SIGXCPU)."""

    seconds: float


@dataclass(frozen=True)
class MemoryLimit:
    """A MemoryError under the address-space limit, in fn or while the payload or result was moved. A C library
    that crashes on a failed allocation instead of reporting it shows as `Crashed` (SIGSEGV, SIGABRT)."""

    message: str


@dataclass(frozen=True)
class Crashed:
    signal: int | None  # the signal that killed the worker (11 for SIGSEGV, ...)
    exit_code: int | None  # or the code it exited with (os._exit, ...); both None: the zygote died too
    reason: str  # "SIGSEGV", "exit code 3", ...


@dataclass(frozen=True)
class Failed:
    type: str  # the exception's class name
    message: str


Outcome = Ok | Timeout | CpuLimit | MemoryLimit | Crashed | Failed


def removal_reason(outcome: Outcome) -> str | None:
    """The reason a document is removed with when its sandboxed step ended this way (None for `Ok`): one
    vocabulary for every recipe."""
    if isinstance(outcome, Ok):
        return None
    if isinstance(outcome, CpuLimit):
        return "error:cpu_time_limit"
    if isinstance(outcome, Timeout):
        return "error:timeout"
    if isinstance(outcome, MemoryLimit):
        return "error:memory_limit"
    if isinstance(outcome, Crashed):
        return f"error:crashed:{outcome.reason}"
    return f"error:{outcome.type}"


@dataclass
class Counters:
    calls: int = 0
    restarts: int = 0  # workers started after the first: recycling, timeouts, crashes, memory limits
    timeouts: int = 0
    cpu_limits: int = 0
    crashes: int = 0
    memory_limits: int = 0
    failures: int = 0


_COUNTED = {
    Timeout: "timeouts",
    CpuLimit: "cpu_limits",
    Crashed: "crashes",
    MemoryLimit: "memory_limits",
    Failed: "failures",
}


class SandboxError(RuntimeError):
    """The zygote could not start, e.g. a preloaded module failed to import."""


_OUT_OF_MEMORY = 86  # a worker's exit code: MemoryError outside fn (receiving the payload, pickling the result)

# A message between parent and worker: a frame (is the body raw bytes?, head size, body size), a pickled head, a body.
_FRAME = struct.Struct("!?QQ")


def _encode(head: Any, value: Any) -> tuple[bytes, bytes, bool]:
    raw = type(value) is bytes  # no pickled copy of a large PDF
    return pickle.dumps(head, -1), value if raw else pickle.dumps(value, -1), raw


def _write(sock: socket.socket, head: bytes, body: bytes, raw: bool) -> None:
    sock.sendall(_FRAME.pack(raw, len(head), len(body)) + head, socket.MSG_NOSIGNAL)
    sock.sendall(body, socket.MSG_NOSIGNAL)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []  # on a blocking socket (the worker's) one call fills one buffer: a large PDF is not copied again
    while n:
        chunks.append(sock.recv(n, socket.MSG_WAITALL))
        if not chunks[-1]:
            raise EOFError("peer closed the connection")
        n -= len(chunks[-1])
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read(sock: socket.socket) -> tuple[bytes, bytes, bool]:
    raw, head_size, body_size = _FRAME.unpack(_read_exact(sock, _FRAME.size))
    return _read_exact(sock, head_size), _read_exact(sock, body_size), raw


def _statm(field: int) -> int:
    with open("/proc/self/statm") as f:  # in pages: size, resident, ...
        return int(f.read().split()[field]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker(sock: socket.socket, zygote: int, memory_limit: int | None, cpu_limit: float | None) -> None:
    """A forked child of the zygote: serve calls until the parent closes the socket."""
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG: die with the zygote
    if os.getppid() != zygote:  # it died before prctl took effect
        return
    os.setpgid(0, 0)  # a process group of its own, so that ending it also ends whatever fn started
    if memory_limit:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        limit = _statm(0) + memory_limit
        limit = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if cpu_limit:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU's default action dumps core: not here
    while True:
        try:
            request = _read(sock)
        except (EOFError, OSError):
            return
        if cpu_limit:  # this call's budget on top of what the worker used so far (whole seconds: the kernel's unit)
            soft = int(_cpu_seconds() + cpu_limit) + 1
            resource.setrlimit(
                resource.RLIMIT_CPU, (soft if cpu_hard == resource.RLIM_INFINITY else min(soft, cpu_hard), cpu_hard)
            )
        head, value = _call(*request)
        del request  # free the payload before the reply is built
        try:
            reply = _encode((*head, _statm(1)), value)
        except MemoryError:
            raise
        except Exception as e:  # an unpicklable result
            reply = _encode(("failed", (type(e).__name__, f"result cannot be pickled: {e}"), _statm(1)), None)
        _write(sock, *reply)


def _call(head: bytes, body: bytes, raw: bool) -> tuple[tuple[str, Any], Any]:
    try:
        fn, kwargs = pickle.loads(head)
        return ("ok", None), fn(body if raw else pickle.loads(body), **kwargs)
    except MemoryError as e:
        return ("memory", f"{type(e).__name__}: {e}"), None
    except BaseException as e:  # SystemExit too: the worker reports, the parent decides
        return ("failed", (type(e).__name__, str(e))), None


def _zygote(fd: int, preload: list[str], memory_limit: int | None, cpu_limit: float | None = None) -> None:
    """The zygote's main: import the heavy modules once, then fork and reap workers as the parent asks."""
    ctrl = socket.socket(fileno=fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which then closes us
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an inherited SIG_IGN would reap workers behind our back
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")  # raising it needs no privilege; workers inherit it
    try:
        for name in preload:
            importlib.import_module(name)
    except BaseException:
        ctrl.send(pickle.dumps(("error", traceback.format_exc())))
        return
    gc.freeze()  # the collector then leaves the preloaded objects alone, and their pages shared
    ctrl.send(pickle.dumps(("ready", None)))
    workers: set[int] = set()
    while True:
        msg, fds, _, _ = socket.recv_fds(ctrl, 4096, 1)
        if not msg:  # the parent closed the sandbox, or died
            break
        op, pid = pickle.loads(msg)
        if op == "fork":
            zygote, pid = os.getpid(), os.fork()
            if pid == 0:
                _run_worker(ctrl, fds[0], zygote, memory_limit, cpu_limit)
            with contextlib.suppress(OSError):  # also here, so that no "end" can come before the worker's own
                os.setpgid(pid, pid)
            workers.add(pid)
            os.close(fds[0])
            ctrl.send(pickle.dumps(pid))
        else:  # "end"
            workers.discard(pid)
            ctrl.send(pickle.dumps(_end(pid)))
    for pid in workers:
        _end(pid)


def _run_worker(
    ctrl: socket.socket, fd: int, zygote: int, memory_limit: int | None, cpu_limit: float | None
) -> NoReturn:
    code = 0
    # Held open until os._exit: if the socket closed as the exception unwound, the parent would see the
    # connection drop and have the zygote SIGKILL us before we exit with _OUT_OF_MEMORY (a race seen under load).
    sock = socket.socket(fileno=fd)
    try:
        ctrl.close()
        _worker(sock, zygote, memory_limit, cpu_limit)
    except MemoryError:
        code = _OUT_OF_MEMORY
    except BaseException:
        traceback.print_exc()
        code = 70
    os._exit(code)  # never unwind into the zygote's loop


def _end(pid: int) -> int | None:
    """SIGKILL the worker's process group (nothing to a worker that died already) and reap the worker; the wait
    status tells how it ended."""
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def _ended(status: int | None, cpu_limit: float | None = None) -> CpuLimit | MemoryLimit | Crashed:
    """The outcome of a call whose worker died; `status` is its wait status, None if the zygote died too."""
    if status is None:
        return Crashed(None, None, "worker lost with its zygote")
    code = os.waitstatus_to_exitcode(status)
    if code == _OUT_OF_MEMORY:
        return MemoryLimit("MemoryError outside fn (receiving the payload or sending the result)")
    if code >= 0:
        return Crashed(None, code, f"exit code {code}")
    if -code == signal.SIGXCPU and cpu_limit:
        return CpuLimit(cpu_limit)
    try:
        name = signal.Signals(-code).name
    except ValueError:  # a real-time signal
        name = f"signal {-code}"
    return Crashed(-code, None, name + (" (the kernel's OOM killer?)" if -code == signal.SIGKILL else ""))


_BOOT = "import json, sys; c = json.loads(sys.argv[1]); sys.path[:] = c.pop('path'); import corpus.sandbox as s; "
_BOOT += "s._zygote(**c)"


class Sandbox:
    """Runs ``fn(payload, **kwargs)`` in a disposable worker process; see the module docstring.

    `fn` must be a picklable top-level function of an importable module (not ``__main__``), which the zygote
    preloads along with `preload`. `timeout`: wall-clock seconds per call; `cpu_limit`: CPU seconds per call (None:
    no limit beyond the wall clock); `memory_limit`: bytes of address space a
    worker may add to what it starts with; `max_calls`, `max_rss` (bytes): when to replace a worker. None: no limit.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        timeout: float = 60.0,
        memory_limit: int | None = 4 << 30,
        cpu_limit: float | None = None,
        max_calls: int | None = 1000,
        max_rss: int | None = 1 << 30,
        preload: Sequence[str] = (),
        start_timeout: float = 120.0,
    ) -> None:
        pickle.dumps(fn)  # fail here, not in every call
        self.fn, self.timeout, self.memory_limit, self.cpu_limit = fn, timeout, memory_limit, cpu_limit
        self.max_calls, self.max_rss, self.start_timeout = max_calls, max_rss, start_timeout
        self.preload = [*preload, *([fn.__module__] if fn.__module__ not in ("__main__", None) else [])]
        self.counters = Counters()
        self._zygote: subprocess.Popen[bytes] | None = None
        self._ctrl: socket.socket | None = None  # to the zygote
        self._conn: socket.socket | None = None  # to the worker
        self.worker_pid: int | None = None
        self._worker_calls = self._started = 0

    @property
    def zygote_pid(self) -> int | None:
        return self._zygote.pid if self._zygote else None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> Sandbox:
        """Start the zygote (which imports the preloaded modules) now rather than at the first call."""
        if self._zygote is not None and self._zygote.poll() is None:
            return self
        self._stop_zygote()
        self._ctrl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            config = {"path": [str(p) for p in sys.path], "fd": theirs.fileno(), "preload": self.preload}
            limits = {"memory_limit": self.memory_limit, "cpu_limit": self.cpu_limit}
            argv = [sys.executable, "-c", _BOOT, json.dumps({**config, **limits})]
            self._zygote = subprocess.Popen(argv, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        self._ctrl.settimeout(self.start_timeout)
        try:
            status, detail = self._ask(None)
        except (OSError, EOFError) as e:
            status, detail = "error", f"{e!r}, exit code {self._zygote.poll()}"
        if status != "ready":
            self._stop_zygote()
            raise SandboxError(f"the sandbox's zygote failed to start: {detail}")
        return self

    def run(self, payload: Any, /, **kwargs: Any) -> Outcome:
        """Call ``fn(payload, **kwargs)`` in the worker. Raises only if payload or kwargs cannot be pickled."""
        self.counters.calls += 1
        request = _encode((self.fn, kwargs), payload)
        if self._conn is not None and (self._zygote is None or self._zygote.poll() is not None):
            self._end_worker()  # the zygote died between calls (the OOM killer?), and the worker with it
        if self._conn is None:
            self._start_worker()
        outcome, rss = self._exchange(request)
        if self._conn is not None and (
            isinstance(outcome, MemoryLimit)  # after a failed allocation, trust only a fresh worker
            or (self.max_calls and self._worker_calls >= self.max_calls)
            or (self.max_rss and rss > self.max_rss)
        ):
            self._end_worker()
        if counter := _COUNTED.get(type(outcome)):
            setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        return outcome

    def recycle(self) -> None:
        """End the current worker (if any): the next call starts a fresh one, with none of this one's state."""
        if self._conn is not None:
            self._end_worker()

    def close(self) -> None:
        """End the worker and the zygote; both are reaped when this returns."""
        if self._conn is not None:
            self._conn.close()
            self._conn = self.worker_pid = None
        self._stop_zygote()

    def _exchange(self, request: tuple[bytes, bytes, bool]) -> tuple[Outcome, int]:
        """One call on the current worker: the outcome, and the worker's RSS after it."""
        assert self._conn is not None
        deadline = time.monotonic() + self.timeout
        try:
            self._conn.settimeout(self.timeout)
            _write(self._conn, *request)
            self._conn.settimeout(max(deadline - time.monotonic(), 1e-3))
            head, body, raw = _read(self._conn)
        except TimeoutError:
            self._end_worker()
            return Timeout(self.timeout), 0
        except (OSError, EOFError):
            return _ended(self._end_worker(), self.cpu_limit), 0
        self._worker_calls += 1
        status, detail, rss = pickle.loads(head)
        if status != "ok":
            return (MemoryLimit(detail) if status == "memory" else Failed(*detail)), rss
        try:
            return Ok(body if raw else pickle.loads(body)), rss
        except Exception as e:  # a result whose class the parent cannot import
            return Failed(type(e).__name__, f"result cannot be unpickled: {e}"), rss

    def _ask(self, msg: Any, fds: Sequence[int] = ()) -> Any:
        """Send a message to the zygote (None: only read) and return its reply."""
        assert self._ctrl is not None
        if fds:
            socket.send_fds(self._ctrl, [pickle.dumps(msg)], fds)
        elif msg is not None:
            self._ctrl.send(pickle.dumps(msg))
        if not (reply := self._ctrl.recv(1 << 20)):
            raise EOFError("the sandbox's zygote exited")
        return pickle.loads(reply)

    def _start_worker(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                pid = self.start()._ask(("fork", None), [theirs.fileno()])
            except (OSError, EOFError):  # the zygote died meanwhile (the OOM killer, say): replace it, once
                self._stop_zygote()
                pid = self.start()._ask(("fork", None), [theirs.fileno()])
        self._conn, self.worker_pid = ours, pid
        self.counters.restarts += self._started > 0
        self._started, self._worker_calls = self._started + 1, 0

    def _end_worker(self) -> int | None:
        """Close the worker's socket and have the zygote kill and reap it; returns its wait status."""
        assert self._conn is not None
        self._conn.close()
        pid, self._conn, self.worker_pid = self.worker_pid, None, None
        try:
            return self._ask(("end", pid))
        except (OSError, EOFError):  # the zygote is gone, and with it the worker (PDEATHSIG)
            return None

    def _stop_zygote(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()  # the zygote sees EOF, ends its workers and exits
            self._ctrl = None
        if self._zygote is not None:
            try:
                self._zygote.wait(10)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
            self._zygote = None
