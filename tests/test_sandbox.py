"""corpus.sandbox: every outcome, the limits, recycling, preloading, and that no process outlives its sandbox.

The functions the workers run are defined at the top of this module, which the zygote imports by name."""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from corpus.sandbox import Crashed, Failed, MemoryLimit, Ok, Sandbox, SandboxError, Timeout

ROOT = Path(__file__).resolve().parent.parent
_HOARD: list[bytes] = []


def echo(payload: object, **kwargs: object) -> object:
    return (payload, kwargs) if kwargs else payload


def stall(mode: str) -> str:
    if mode == "sleep":
        time.sleep(60)
    while mode == "spin":
        pass
    return mode


def crash(how: str) -> str:
    if how == "segfault":
        ctypes.string_at(0)
    elif how == "exit":
        os._exit(3)
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return how


def allocate(size: int) -> int:
    return len(bytearray(size))


def fail(payload: object) -> object:
    if payload == "unpicklable":
        return lambda: None
    raise ValueError(f"bad document {payload}")


def pid(payload: object) -> int:
    return os.getpid()


def hoard(size: int) -> int:
    _HOARD.append(b"\x01" * size)  # touched pages: resident, unlike bytearray(size)
    return os.getpid()


def write_pid_and_sleep(path: str) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(60)


def spawn_and_sleep(path: str) -> None:
    Path(path).write_text(str(subprocess.Popen(["sleep", "60"]).pid))
    time.sleep(60)


def kill_zygote(path: str | None) -> str:
    if path:
        Path(path).write_text(str(os.getpid()))
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)
    return "ok"


def import_probe(payload: object) -> int:
    import sandbox_probe  # noqa: F401 (preloaded: a no-op here)

    return os.getpid()


def _alive(pid: int) -> bool:
    """Running: a zombie (exited, waiting for a reaper) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _all_gone(pids: list[int], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _children() -> set[int]:
    """Our direct child processes, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(stat.parent.name))
        except (OSError, ValueError):
            pass
    return found


def _wait_for_text(path: Path, seconds: float = 20.0) -> str:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.02)
    return path.read_text()


def test_large_payload_and_results_round_trip() -> None:
    payload = os.urandom(1 << 20) * 50  # 50 MB
    with Sandbox(echo, timeout=30) as sandbox:
        assert sandbox.run(payload) == Ok(payload)
        text = "ünïcode text " * 400_000  # about 5 MB
        assert sandbox.run(text) == Ok(text)
        assert sandbox.run({"pages": [1, 2]}, lang="en") == Ok(({"pages": [1, 2]}, {"lang": "en"}))
        assert sandbox.run(b"") == Ok(b"")
        assert sandbox.counters.calls == 4 and sandbox.counters.restarts == 0


def test_timeout_kills_the_worker_and_the_next_call_gets_a_fresh_one() -> None:
    with Sandbox(stall, timeout=0.5) as sandbox:
        for mode in ("sleep", "spin"):
            worker, start = None, time.monotonic()
            sandbox.run("warm")
            worker = sandbox.worker_pid
            assert sandbox.run(mode) == Timeout(0.5)
            assert time.monotonic() - start < 0.5 + 2.0
            assert worker is not None and not _alive(worker)
            assert sandbox.run("after") == Ok("after")
        assert sandbox.counters.timeouts == 2 and sandbox.counters.restarts == 2


def test_ending_a_worker_ends_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    with Sandbox(spawn_and_sleep, timeout=1.0) as sandbox:
        assert sandbox.run(str(pid_file)) == Timeout(1.0)
        assert _all_gone([int(pid_file.read_text())])


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("segfault", Crashed(signal.SIGSEGV, None, "SIGSEGV")),
        ("exit", Crashed(None, 3, "exit code 3")),
        ("kill", Crashed(signal.SIGKILL, None, "SIGKILL (the kernel's OOM killer?)")),
    ],
)
def test_crash_is_an_outcome_and_the_next_call_gets_a_fresh_worker(how: str, expected: Crashed) -> None:
    with Sandbox(crash) as sandbox:
        assert sandbox.run("first") == Ok("first")
        first = sandbox.worker_pid
        assert sandbox.run(how) == expected
        assert sandbox.run("again") == Ok("again")
        assert sandbox.worker_pid != first
        assert sandbox.counters.crashes == 1 and sandbox.counters.restarts == 1


def test_memory_limit() -> None:
    with Sandbox(allocate, memory_limit=256 << 20) as sandbox:
        assert sandbox.run(64 << 20) == Ok(64 << 20)
        first = sandbox.worker_pid
        outcome = sandbox.run(1 << 30)
        assert isinstance(outcome, MemoryLimit) and outcome.message.startswith("MemoryError")
        assert sandbox.run(1 << 20) == Ok(1 << 20)
        assert sandbox.worker_pid != first  # a worker whose allocation failed is not trusted again
        outcome = sandbox.run(b"x" * (300 << 20))  # too large to even receive
        assert isinstance(outcome, MemoryLimit) and "receiving the payload" in outcome.message
        assert sandbox.run(1 << 20) == Ok(1 << 20)
        assert sandbox.counters.memory_limits == 2


def test_exceptions_and_unpicklable_things_are_failures() -> None:
    with Sandbox(fail) as sandbox:
        assert sandbox.run(7) == Failed("ValueError", "bad document 7")
        outcome = sandbox.run("unpicklable")
        assert isinstance(outcome, Failed) and "result cannot be pickled" in outcome.message
        assert sandbox.counters.failures == 2 and sandbox.counters.restarts == 0
    with pytest.raises((pickle.PicklingError, AttributeError)):
        Sandbox(lambda payload: payload)
    with pytest.raises(SandboxError, match="ModuleNotFoundError"):
        Sandbox(echo, preload=["no_such_module_for_the_sandbox"]).start()


def test_recycling_after_max_calls_and_max_rss() -> None:
    with Sandbox(pid, max_calls=2) as sandbox:
        pids = [sandbox.run(None).value for _ in range(5)]
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
        assert sandbox.counters.restarts == 2
    with Sandbox(hoard, max_rss=150 << 20) as sandbox:
        first = sandbox.run(1 << 20).value
        assert sandbox.run(1 << 20).value == first
        assert sandbox.run(200 << 20).value == first
        assert sandbox.run(1 << 20).value != first


def test_workers_run_with_a_high_oom_score() -> None:
    with Sandbox(pid) as sandbox:
        worker = sandbox.run(None).value
        assert Path(f"/proc/{worker}/oom_score_adj").read_text().strip() == "1000"


def test_preloaded_modules_are_imported_once_in_the_zygote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "imports.log"
    (tmp_path / "sandbox_probe.py").write_text(
        "import os, time\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(f'{os.getpid()}\\n')\n"
        "time.sleep(0.5)  # a heavy import\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # the zygote gets our sys.path
    with Sandbox(import_probe, preload=["sandbox_probe"], max_calls=1) as sandbox:
        start = time.monotonic()
        pids = [sandbox.run(None).value for _ in range(5)]
        assert time.monotonic() - start < 2.0  # five fresh workers; re-importing would take 2.5 s
        assert len(set(pids)) == 5
        assert log.read_text().split() == [str(sandbox.zygote_pid)]


def test_close_leaves_no_process_behind() -> None:
    before = _children()
    with Sandbox(pid) as sandbox:
        worker, zygote = sandbox.run(None).value, sandbox.zygote_pid
        assert _children() - before == {zygote}  # the worker is the zygote's child
    assert _children() == before
    assert not Path(f"/proc/{worker}").exists() and not Path(f"/proc/{zygote}").exists()  # reaped, not zombies


def test_a_sandbox_outlives_the_thread_that_started_it() -> None:
    sandboxes = []
    thread = threading.Thread(target=lambda: sandboxes.append(Sandbox(echo).start()))
    thread.start()
    thread.join()
    with sandboxes[0] as sandbox:
        time.sleep(0.2)
        assert sandbox.run("from the main thread") == Ok("from the main thread")


def test_killing_the_zygote_kills_its_worker_and_the_sandbox_recovers(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    with Sandbox(kill_zygote) as sandbox:
        zygote = sandbox.zygote_pid
        assert sandbox.run(str(pid_file)) == Crashed(None, None, "worker lost with its zygote")
        assert _all_gone([int(pid_file.read_text())])
        assert sandbox.run(None) == Ok("ok")
        assert sandbox.zygote_pid != zygote


_PARENT = """
import sys
from corpus.sandbox import Sandbox
from tests.test_sandbox import write_pid_and_sleep
sandbox = Sandbox(write_pid_and_sleep).start()
print(sandbox.zygote_pid, flush=True)
sandbox.run(sys.argv[1])
"""


def test_a_killed_parent_leaves_no_orphans(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(pid_file)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        zygote = int(parent.stdout.readline())  # type: ignore[union-attr]
        worker = int(_wait_for_text(pid_file))  # busy in fn when the parent dies
        assert _alive(zygote) and _alive(worker)
    finally:
        parent.kill()
        parent.wait()
    assert _all_gone([zygote, worker])
