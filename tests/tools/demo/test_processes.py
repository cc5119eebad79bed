"""The demo's child processes are always stopped: SIGTERM first, SIGKILL for a stubborn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import waiting

from driftloop.tools.demo.processes import (
    ChildProcess,
    ChildProcesses,
    DemoChildError,
    process_gone,
    sigterm_as_interrupt,
    wait_until,
)

IGNORES_SIGTERM = ("import signal, sys, time\n"
                   "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                   "print('ready', flush=True)\n"
                   "time.sleep(120)\n")


def _wait_ready(child: ChildProcess) -> None:
    waiting.wait_until(lambda: "ready" in child.tail(), 30, "the child ready", interval=0.05,
                       seen=lambda: f"log: {child.tail(500)!r}")


def test_a_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    child = ChildProcess("stubborn", [sys.executable, "-c", IGNORES_SIGTERM], env=dict(os.environ),
                         log_path=tmp_path / "stubborn.log").start()
    _wait_ready(child)
    began = time.monotonic()
    assert child.stop(grace=1.0) == -signal.SIGKILL
    assert 0.9 < time.monotonic() - began < 10 and not child.alive and process_gone(child.pid)


def test_grandchildren_in_the_group_are_stopped_too(tmp_path: Path) -> None:
    spawn = ("import subprocess, sys, time\n"
             f"p = subprocess.Popen([sys.executable, '-c', {IGNORES_SIGTERM!r}])\n"
             "print('grandchild', p.pid, flush=True)\n"
             "time.sleep(120)\n")
    child = ChildProcess("parent", [sys.executable, "-c", spawn], env=dict(os.environ),
                         log_path=tmp_path / "parent.log").start()
    _wait_ready(child)
    grandchild = int(next(line.split()[1] for line in child.tail().splitlines()
                          if line.startswith("grandchild")))
    child.stop(grace=1.0)
    # reaped by init after the group's SIGKILL
    waiting.wait_until(lambda: process_gone(grandchild), 10, "the grandchild gone", interval=0.05)


def test_an_exception_in_the_block_stops_every_child(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ChildProcesses(tmp_path, grace=1.0) as children:
        first = children.start("a", [sys.executable, "-c", "import time; time.sleep(120)"])
        second = children.start("b", [sys.executable, "-c", IGNORES_SIGTERM])
        _wait_ready(second)
        raise RuntimeError("the demo failed")
    assert not first.alive and not second.alive
    assert (tmp_path / "a.log").exists() and (tmp_path / "b.log").exists()


def test_sigterm_to_the_demo_becomes_an_interrupt_and_children_stop(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from driftloop.tools.demo.processes import ChildProcesses, sigterm_as_interrupt\n"
        f"with sigterm_as_interrupt(), ChildProcesses(Path({str(tmp_path)!r}), grace=1.0) as c:\n"
        "    child = c.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "    print(child.pid, flush=True)\n"
        "    time.sleep(120)\n")
    demo = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        pid = int(demo.stdout.readline())
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
        assert b"KeyboardInterrupt" in demo.stderr.read()
        assert process_gone(pid)
    finally:
        if demo.poll() is None:
            demo.kill()


def test_the_sigterm_handler_is_restored_after_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_child_that_died_is_reported_with_its_log(tmp_path: Path) -> None:
    child = ChildProcess("crasher", [sys.executable, "-c", "raise SystemExit('boom')"],
                         env=dict(os.environ), log_path=tmp_path / "crasher.log").start()
    child.process.wait(timeout=30)
    with pytest.raises(DemoChildError, match=r"(?s)crasher exited with status 1.*boom"):
        child.check()


async def test_wait_until_fails_at_its_deadline_and_passes_child_errors_on() -> None:
    with pytest.raises(DemoChildError, match="timed out after 0 s waiting for the moon"):
        await wait_until(lambda: False, timeout=0.2, what="the moon", interval=0.05)

    def dead() -> None:
        raise DemoChildError("worker exited")

    with pytest.raises(DemoChildError, match="worker exited"):
        await wait_until(lambda: False, timeout=5, what="x", check=dead)

    async def ready() -> bool:
        return True

    await wait_until(ready, timeout=1, what="an async condition")


def test_a_child_reads_the_settings_file_its_parent_read(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``driftloop --config F demo`` (or a bench that starts processes): every child reads F,
    named by an absolute path, and the parent's run-specific variables still win over it."""
    from driftloop.schemas.settings import load_settings
    from driftloop.tools.demo.processes import driftloop_env

    (tmp_path / "mine.toml").write_text('[learner]\nmin_steps = 7\n[kafka]\ntopic_prefix = "f."\n')
    monkeypatch.chdir(tmp_path)
    parent = load_settings("mine.toml")
    assert parent.config_file == tmp_path / "mine.toml"
    run = parent.model_copy(update={"kafka": parent.kafka.model_copy(
        update={"topic_prefix": "run1."})})
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env |= driftloop_env(run, {"t": {"kind": "classification"}})
    child = subprocess.run(
        [sys.executable, "-c", "from driftloop.schemas.settings import load_settings as l; "
                               "s = l(); print(s.learner.min_steps, s.kafka.topic_prefix)"],
        env=env, cwd=Path(sys.prefix), capture_output=True, text=True, timeout=120, check=True)
    assert child.stdout.split() == ["7", "run1."]
    assert "DRIFTLOOP_CONFIG" not in driftloop_env(load_settings(None), {})
