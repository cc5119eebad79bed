"""A local single-node Apache Kafka broker (KRaft), run from Maven Central's jars.

No Docker and no tarball: :meth:`LocalKafka.ensure_jars` fetches ``kafka_2.13`` once with
Maven, :meth:`LocalKafka.start` formats a data folder and launches ``kafka.Kafka`` in its own
session, writing a pid file, so ``driftloop kafka stop`` from another shell can find it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import BrokerStartError, PortInUseError, ToolsError
from .jars import KAFKA_VERSION, default_cache_dir, ensure_kafka_jars, require
from .probe import broker_answers, port_is_free
from .process import cluster_id, die_with_parent, signal_group

__all__ = ["BrokerStatus", "LocalKafka", "default_home"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# Training requests carry their examples inline (up to 16 MiB per topic config): the broker
# must accept and replicate a little more than the largest topic allows.
MAX_MESSAGE_BYTES = 20 * 1024 * 1024
_POLL_SECONDS = 0.2
# kafka.log is appended to across restarts and rotated at a start once it is this big.
MAX_LOG_BYTES = 50 * 1024 * 1024


def default_home() -> Path:
    """``$XDG_DATA_HOME/driftloop/kafka``, else ``~/.local/share/driftloop/kafka``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "driftloop" / "kafka"


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    """What ``driftloop kafka status`` reports.

    ``running``: the pid file names a live broker process of this home;
    ``answering``: the broker on ``bootstrap`` serves Metadata requests.
    """

    running: bool
    pid: int | None
    bootstrap: str
    answering: bool

    def describe(self) -> str:
        """One line for people.

        >>> BrokerStatus(True, 42, "127.0.0.1:9092", True).describe()
        'kafka running on 127.0.0.1:9092 (pid 42)'
        >>> BrokerStatus(False, None, "127.0.0.1:9092", False).describe()
        'kafka not running (127.0.0.1:9092)'
        """
        if self.running and self.answering:
            return f"kafka running on {self.bootstrap} (pid {self.pid})"
        if self.running:
            return f"kafka starting or stuck on {self.bootstrap} (pid {self.pid}, not answering)"
        if self.answering:
            return (f"kafka not running from this home, but another broker answers on "
                    f"{self.bootstrap}")
        return f"kafka not running ({self.bootstrap})"


class LocalKafka:
    """One single-node KRaft broker living in the folder ``home``.

    Parameters
    ----------
    home
        Holds ``server.properties``, ``log4j.properties``, the data (``data/``),
        ``kafka.log`` and ``kafka.pid``.
    port, controller_port
        The client (PLAINTEXT) and controller listeners, both on 127.0.0.1.
    version
        Kafka version fetched from Maven Central.
    heap
        JVM ``-Xmx``: the broker shares two cores and the RAM with the worker and learner.
    cache_dir
        Where jars are cached (``$DRIFTLOOP_CACHE_DIR`` or ``~/.cache/driftloop``).
    extra_config
        ``server.properties`` entries that override the defaults below.
    jvm_options
        Extra JVM flags, e.g. ``-XX:TieredStopAtLevel=1`` for a faster, lighter start of a
        short-lived test broker.
    progress
        Called with a line of text for steps a person waits on (the jar download).
    die_with_parent
        Linux only: the broker gets SIGTERM when the process that started it dies, so a
        killed test session leaves no JVM behind. The CLI leaves it off: its broker outlives it.

    Examples
    --------
    >>> import tempfile
    >>> kafka = LocalKafka(home=Path(tempfile.mkdtemp()), port=19092, controller_port=19093)
    >>> kafka.bootstrap_servers
    '127.0.0.1:19092'
    >>> kafka.status().running
    False
    >>> kafka.server_properties()["controller.quorum.voters"]
    '1@127.0.0.1:19093'
    """

    def __init__(self, *, home: Path, port: int = 9092, controller_port: int = 9093,
                 version: str = KAFKA_VERSION, heap: str = "512m",
                 cache_dir: Path | None = None, extra_config: Mapping[str, str] | None = None,
                 jvm_options: Sequence[str] = (),
                 progress: Callable[[str], None] | None = None,
                 die_with_parent: bool = False) -> None:
        for name, value in (("port", port), ("controller_port", controller_port)):
            if not 0 < value < 65536:
                raise ValueError(f"{name} must be in 1..65535, got {value}")
        if port == controller_port:
            raise ValueError(f"port and controller_port must differ, both are {port}")
        if not heap or not heap[:-1].isdigit() or heap[-1].lower() not in "kmg":
            raise ValueError(f"heap must look like 512m or 1g, got {heap!r}")
        self.home = Path(home).expanduser().absolute()
        self.port = port
        self.controller_port = controller_port
        self.version = version
        self.heap = heap
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.extra_config = dict(extra_config or {})
        self.jvm_options = tuple(jvm_options)
        self.progress = progress
        self.die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    # -- jars and configuration ---------------------------------------------------------
    def ensure_jars(self) -> Path:
        """The jar folder, fetched with Maven on first use (see :func:`ensure_kafka_jars`)."""
        return ensure_kafka_jars(self.version, cache_dir=self.cache_dir, progress=self.progress)

    def server_properties(self) -> dict[str, str]:
        """The broker configuration: defaults for one small node, then ``extra_config``."""
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            # The default 50 partitions make the first consumer group wait while they are
            # created; a local broker serves a handful of groups.
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            # A lone consumer should not wait 3 s for companions that never come.
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": str(MAX_MESSAGE_BYTES),
            "replica.fetch.max.bytes": str(MAX_MESSAGE_BYTES),
            # Topics come from `driftloop topics create` with their configs, never by accident.
            "auto.create.topics.enable": "false",
            # Two cores are shared with the worker and the learner.
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            # The default 128 MiB cleaner buffer is a quarter of a 512 MiB heap.
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        }
        config.update(self.extra_config)
        return config

    def _write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        lines = ["# Written by driftloop's LocalKafka; rewritten at every start."]
        lines += [f"{key}={value}" for key, value in self.server_properties().items()]
        self.properties_file.write_text("\n".join(lines) + "\n")
        asset = resources.files("driftloop.tools.kafka") / "assets" / "log4j.properties"
        (self.home / "log4j.properties").write_text(asset.read_text())

    def _java_command(self, lib: Path, java: str, main: str, *args: str) -> list[str]:
        return [java, f"-Xmx{self.heap}", *self.jvm_options,
                "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
                "-cp", f"{lib}/*", main, *args]

    def is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def format(self, *, lib: Path | None = None) -> None:
        """Format the data folder for a new single-node cluster; a no-op when already done.

        ``lib`` is the jar folder when the caller already has it (else :meth:`ensure_jars`).
        """
        java = require("java")
        pid = self._live_pid()
        if pid is not None:  # its config is what it runs with: not ours to rewrite now
            raise ToolsError(f"kafka from {self.home} is running (pid {pid}): stop it first")
        lib = lib or self.ensure_jars()
        self._write_config()
        if self.is_formatted():
            return
        result = subprocess.run(
            self._java_command(lib, java, "kafka.tools.StorageTool", "format",
                               "--cluster-id", cluster_id(),
                               "--config", str(self.properties_file), "--ignore-formatted"),
            capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise ToolsError(f"formatting {self.data_dir} failed: {output[-2000:]}")

    # -- process -------------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _is_our_broker(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, owned by someone else: not a broker we started
            return False
        proc = Path("/proc") / str(pid)
        if not proc.exists():  # no procfs (macOS): the live pid is the best evidence there is
            return True
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        # A recycled pid, or a zombie nobody reaped yet, is not our broker.
        return state != "Z" and str(self.properties_file).encode() in cmdline

    def _configured_listeners(self) -> str | None:
        # The running broker read this file at its start (it is rewritten only by start()).
        try:
            for line in self.properties_file.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() == "listeners":
                    return value.strip()
        except FileNotFoundError:
            pass
        return None

    def _live_pid(self) -> int | None:
        pid = self._read_pid()
        return pid if pid is not None and self._is_our_broker(pid) else None

    def status(self) -> BrokerStatus:
        """Whether the broker of this home runs and answers (cheap: one socket round trip)."""
        pid = self._live_pid()
        answering = broker_answers(HOST, self.port, timeout=1.0)
        return BrokerStatus(running=pid is not None, pid=pid, bootstrap=self.bootstrap_servers,
                            answering=answering)

    def start(self, timeout: float = 60) -> BrokerStatus:
        """Start the broker and wait until it answers; return at once if it already does.

        Raises :class:`~driftloop.tools.errors.MissingDependencyError` without java (or
        without mvn on first use), :class:`~driftloop.tools.errors.PortInUseError` when
        another process holds a port, and :class:`~driftloop.tools.errors.BrokerStartError`
        (with the last log lines) when the broker dies or stays silent past ``timeout``.
        ``timeout`` counts from the launch of the JVM: a first run's jar download (tens of
        seconds) and the formatting come before it and do not eat into it.
        """
        pid = self._live_pid()
        if pid is not None:
            running_on = self._configured_listeners()
            if running_on and running_on != self.server_properties()["listeners"]:
                raise ToolsError(f"kafka from {self.home} already runs (pid {pid}) with "
                                 f"listeners {running_on}; stop it before changing ports")
            self._wait_until_answering(pid, time.monotonic() + timeout)
            return self.status()
        self.pid_file.unlink(missing_ok=True)
        java = require("java")
        for name, port in (("port", self.port), ("controller port", self.controller_port)):
            if not port_is_free(HOST, port):
                raise PortInUseError(
                    f"cannot start kafka: {name} {port} on {HOST} is in use by another process "
                    f"(choose another with --port / --controller-port)")
        lib = self.ensure_jars()
        self.format(lib=lib)
        self._rotate_log()
        with open(self.log_file, "ab") as out:
            out.write(f"--- driftloop: starting kafka {self.version} at "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} ---\n".encode())
            out.flush()
            self._process = subprocess.Popen(
                self._java_command(lib, java, "kafka.Kafka", str(self.properties_file)),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.home, start_new_session=True,
                preexec_fn=die_with_parent if self.die_with_parent else None)
        deadline = time.monotonic() + timeout
        self.pid_file.write_text(f"{self._process.pid}\n")
        log.info("kafka starting (pid %d), log in %s", self._process.pid, self.log_file)
        try:
            self._wait_until_answering(self._process.pid, deadline)
        except BrokerStartError:
            self.stop(timeout=10)
            raise
        return self.status()

    def _rotate_log(self) -> None:
        # One earlier generation is kept: enough to see why the last run ended.
        with contextlib.suppress(FileNotFoundError):
            if self.log_file.stat().st_size > MAX_LOG_BYTES:
                self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))

    def _wait_until_answering(self, pid: int, deadline: float) -> None:
        while True:
            if broker_answers(HOST, self.port, timeout=1.0):
                return
            if not self._is_our_broker(pid):
                code = self._process.returncode if self._process is not None else None
                how = f" with exit status {code}" if code is not None else ""
                raise BrokerStartError(f"kafka (pid {pid}) exited{how} before it answered "
                                       f"on {self.bootstrap_servers}", self.logs(30))
            if time.monotonic() >= deadline:
                raise BrokerStartError(f"kafka (pid {pid}) did not answer on "
                                       f"{self.bootstrap_servers} in time", self.logs(30))
            time.sleep(_POLL_SECONDS)

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM the broker (a clean shutdown), SIGKILL it after ``timeout`` seconds.

        Idempotent: returns False when nothing was running. The pid file is removed.
        """
        pid = self._live_pid()
        stopped = False
        if pid is not None:
            stopped = True
            signal_group(pid, signal.SIGTERM)
            if not self._wait_for_exit(pid, timeout):
                log.warning("kafka (pid %d) ignored SIGTERM for %.0f s: killing it", pid, timeout)
                signal_group(pid, signal.SIGKILL)
                self._wait_for_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        return stopped

    def kill(self) -> bool:
        """SIGKILL the broker (a crash: no clean shutdown, no flushed segments); False when
        nothing was running. :meth:`start` recovers its logs from the same folder."""
        pid = self._live_pid()
        if pid is None:
            return False
        signal_group(pid, signal.SIGKILL)
        self._wait_for_exit(pid, 30)
        self.pid_file.unlink(missing_ok=True)
        self._process = None
        return True

    def _wait_for_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while self._is_our_broker(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of ``kafka.log`` ('' when there is none yet)."""
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as handle:
                return "".join(deque(handle, maxlen=max(lines, 0)))
        except FileNotFoundError:
            return ""
