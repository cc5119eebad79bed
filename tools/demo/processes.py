"""The demo's child processes: each in its own process group, logged to a file, always stopped.

``driftloop demo`` runs the worker, the learner and the service as real processes, the way an
operator would. Whatever ends the demo (its normal end, an exception, Ctrl-C or SIGTERM), the
children are sent SIGTERM as a whole process group and SIGKILLed after a grace period, so
nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from ...schemas.settings import CONFIG_ENV, Settings
from ..errors import ToolsError

__all__ = ["ChildProcess", "ChildProcesses", "DemoChildError", "DemoWaitTimeout", "driftloop_env",
           "process_gone", "sigterm_as_interrupt", "wait_until"]


class DemoChildError(ToolsError):
    """A child process of the demo exited early or was not ready in time."""


class DemoWaitTimeout(DemoChildError):
    """A condition did not hold in time (every child still running)."""


def driftloop_env(settings: Settings, tasks: Mapping[str, Mapping[str, object]]
                  ) -> dict[str, str]:
    """What every driftloop child needs: offline hubs, Kafka (with its security), store, tasks.

    >>> env = driftloop_env(Settings(kafka={"topic_prefix": "run1."}), {"t": {"kind": "x"}})
    >>> env["DRIFTLOOP_KAFKA__TOPIC_PREFIX"], env["DRIFTLOOP_TASKS"], env["HF_HUB_OFFLINE"]
    ('run1.', '{"t": {"kind": "x"}}', '1')
    """
    d = "DRIFTLOOP_"
    return {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        # every Kafka setting, security and secrets included: a child of a demo against a
        # secured broker must not fall back to PLAINTEXT
        **settings.kafka.child_env(),
        f"{d}ARTIFACTS__STORE_URL": settings.artifacts.store_url,
        f"{d}TASKS": json.dumps(tasks),
        # the parent's deployment id, derived or set: children must mint the same version ids
        f"{d}DEPLOYMENT": settings.deployment_id,
        # the parent's settings file, so a child reads every section the parent read (the
        # variables above still win over the file)
        **({CONFIG_ENV: str(settings.config_file)} if settings.config_file else {}),
    }


class ChildProcess:
    """One child: started in a new session (its own process group), output in ``log_path``.

    Parameters
    ----------
    name
        Short name shown in messages (``worker``, ``learner``, ``serve``).
    argv
        The command line.
    env
        The full environment of the child.
    log_path
        File receiving its stdout and stderr.

    Examples
    --------
    >>> import sys, tempfile
    >>> from pathlib import Path
    >>> child = ChildProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
    ...                      env={}, log_path=Path(tempfile.mkdtemp()) / "sleeper.log").start()
    >>> child.alive
    True
    >>> child.stop(grace=5.0)
    -15
    >>> child.alive
    False
    """

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str],
                 log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            # start_new_session: a Ctrl-C on the terminal reaches only the demo, which then
            # stops its children in order; and killpg reaches anything a child spawned.
            self.process = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> None:
        """Raise :class:`DemoChildError` (with the log's tail) when the child has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise DemoChildError(f"{self.name} exited with status {self.process.returncode}; "
                                 f"end of {self.log_path}:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; the exit status."""
        self.terminate()
        return self.finish(time.monotonic() + grace)

    def kill(self) -> int | None:
        """SIGKILL the process group at once (a crash, as a fault test injects it)."""
        if self.process is None:
            return None
        self._signal_group(signal.SIGKILL)
        return self.process.wait()

    def terminate(self) -> None:
        """Ask the process group to stop (SIGTERM) without waiting."""
        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGTERM)

    def finish(self, deadline: float) -> int | None:
        """Wait until ``deadline`` (a monotonic instant), then SIGKILL; the exit status."""
        if self.process is None:
            return None
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()
        # Grandchildren the child did not reap still get the group's SIGKILL.
        self._signal_group(signal.SIGKILL)
        return self.process.returncode

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


class ChildProcesses:
    """The demo's children; a context manager that stops them all (newest first) on exit.

    Examples
    --------
    >>> import sys, tempfile
    >>> from pathlib import Path
    >>> with ChildProcesses(Path(tempfile.mkdtemp())) as children:
    ...     child = children.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    ...     child.alive
    True
    >>> child.alive
    False
    """

    def __init__(self, log_dir: Path, *, env: Mapping[str, str] | None = None,
                 grace: float = 20.0) -> None:
        self.log_dir = log_dir
        self.env = dict(os.environ if env is None else env)
        self.grace = grace
        self.children: list[ChildProcess] = []

    def start(self, name: str, argv: Sequence[str], *,
              env: Mapping[str, str] | None = None) -> ChildProcess:
        child = ChildProcess(name, argv, env={**self.env, **(env or {})},
                             log_path=self.log_dir / f"{name}.log")
        self.children.append(child.start())
        return child

    def driftloop(self, name: str, *args: str, env: Mapping[str, str] | None = None
                  ) -> ChildProcess:
        """Start ``python -m driftloop.tools ARGS`` with this interpreter (the same venv)."""
        return self.start(name, [sys.executable, "-m", "driftloop.tools", *args], env=env)

    def check(self) -> None:
        for child in self.children:
            child.check()

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM every child at once, then SIGKILL those still running after the grace."""
        for child in self.children:
            child.terminate()
        deadline = time.monotonic() + self.grace
        return {child.name: child.finish(deadline) for child in self.children}

    def __enter__(self) -> ChildProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` exists any more (reaped, not a zombie of ours).

    >>> import os
    >>> process_gone(os.getpid())
    False
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt for the block, so cleanup runs as on Ctrl-C."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def wait_until(ready: Callable[[], Awaitable[bool] | bool], *, timeout: float, what: str,
                     check: Callable[[], None] | None = None, interval: float = 0.25) -> None:
    """Poll ``ready`` until it holds; ``check`` may raise (a child died); fail at the deadline.

    >>> import asyncio
    >>> asyncio.run(wait_until(lambda: True, timeout=1.0, what="nothing"))
    """
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        answer = ready()
        if inspect.isawaitable(answer):
            answer = await answer
        if answer:
            return
        if time.monotonic() > deadline:
            raise DemoWaitTimeout(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)  # poll interval of a condition wait with a deadline
