"""LocalKafka against real JVM brokers: start, status, stop, failures, and the jar cache."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka_helpers import BROKER_HEAP, BROKER_JVM_OPTIONS, free_port_pair
from waiting import wait_until

from driftloop.tools.errors import (
    BrokerStartError,
    JarFetchError,
    MissingDependencyError,
    PortInUseError,
    ToolsError,
)
from driftloop.tools.kafka import jars as kafka_jars
from driftloop.tools.kafka import local_broker as local_kafka
from driftloop.tools.kafka.jars import KAFKA_VERSION, default_cache_dir, ensure_kafka_jars
from driftloop.tools.kafka.local_broker import MAX_MESSAGE_BYTES, BrokerStatus, LocalKafka
from driftloop.tools.kafka.probe import broker_answers, port_is_free


def own_broker(home: Path, **kwargs) -> LocalKafka:
    """A broker of the test's own (not the session's), on fresh free ports."""
    port, controller_port = free_port_pair()
    return LocalKafka(home=home, port=port, controller_port=controller_port, heap=BROKER_HEAP,
                      jvm_options=BROKER_JVM_OPTIONS, die_with_parent=True, **kwargs)


def path_with(tmp_path: Path, *programs: str) -> str:
    """A PATH holding only links to ``programs`` (so the others look uninstalled)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for program in programs:
        found = shutil.which(program)
        assert found, f"{program} must be installed for this test"
        (bin_dir / program).symlink_to(found)
    return str(bin_dir)


# -- lifecycle ---------------------------------------------------------------------------------

@pytest.mark.kafka
@pytest.mark.slow
def test_start_is_idempotent_status_answers_and_stop_is_graceful(tmp_path: Path) -> None:
    broker = own_broker(tmp_path / "kafka")
    try:
        first = broker.start(timeout=120)
        assert first == BrokerStatus(True, first.pid, broker.bootstrap_servers, True)
        assert broker.pid_file.read_text().strip() == str(first.pid)

        began = time.monotonic()
        again = broker.start(timeout=120)
        assert again.pid == first.pid
        assert time.monotonic() - began < 2.0  # found the live broker, launched nothing

        # Another LocalKafka on the same home (another shell, say) sees the same broker.
        twin = LocalKafka(home=broker.home, port=broker.port,
                          controller_port=broker.controller_port)
        assert twin.status() == first
        assert twin.start().pid == first.pid
        moved = LocalKafka(home=broker.home, port=free_port_pair()[0],
                           controller_port=broker.controller_port)
        with pytest.raises(ToolsError, match="stop it before changing ports"):
            moved.start()
        with pytest.raises(ToolsError, match="stop it first"):
            moved.format()

        began = time.monotonic()
        assert twin.stop(timeout=30) is True
        assert time.monotonic() - began < 30  # SIGTERM sufficed: no SIGKILL
        assert "shut down completed" in broker.logs(200)
        assert not broker.pid_file.exists()
        assert broker.status() == BrokerStatus(False, None, broker.bootstrap_servers, False)
        assert broker.stop() is False
        assert twin.stop() is False
    finally:
        broker.stop()


@pytest.mark.kafka
def test_a_second_object_on_the_session_home_reuses_the_running_broker(kafka_broker) -> None:
    twin = LocalKafka(home=kafka_broker.home, port=kafka_broker.port,
                      controller_port=kafka_broker.controller_port)
    began = time.monotonic()
    status = twin.start()
    assert time.monotonic() - began < 2.0
    assert status.running and status.answering
    assert status.pid == kafka_broker.status().pid
    assert status.describe() == (f"kafka running on {kafka_broker.bootstrap_servers} "
                                 f"(pid {status.pid})")


@pytest.mark.kafka
def test_the_broker_takes_its_configuration(kafka_broker) -> None:
    props = dict(line.split("=", 1) for line in
                 kafka_broker.properties_file.read_text().splitlines()
                 if line and not line.startswith("#"))
    assert props["auto.create.topics.enable"] == "false"
    assert int(props["message.max.bytes"]) >= 20 * 1024 * 1024 == MAX_MESSAGE_BYTES
    assert int(props["replica.fetch.max.bytes"]) >= 20 * 1024 * 1024
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == f"1@127.0.0.1:{kafka_broker.controller_port}"
    assert Path(props["log.dirs"]).is_relative_to(kafka_broker.home)
    # The whole log: the session's broker has logged every earlier test's topics since.
    assert "Kafka Server started" in kafka_broker.log_file.read_text(errors="replace")


def test_a_process_tied_to_its_parent_dies_with_it(tmp_path: Path) -> None:
    # What keeps a killed test session from leaving a JVM behind on a shared machine. The
    # mechanism is checked on `sleep` (a JVM costs seconds); the lifecycle test above
    # starts its broker with die_with_parent=True, so start() works with it.
    script = (
        "import subprocess, sys\n"
        "from driftloop.tools.kafka.process import die_with_parent\n"
        "child = subprocess.Popen(['sleep', '60'], start_new_session=True,\n"
        "                         preexec_fn=die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "sys.exit(0)  # no kill, no wait: the child must go anyway\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    pid = int(done.stdout.split()[-1])
    # polling another process's exit: there is no event to wait on; fails if it outlived its parent
    wait_until(lambda: not _alive(pid), 10, f"pid {pid} gone with its parent", interval=0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# -- start failures ---------------------------------------------------------------------------

@pytest.mark.kafka
def test_a_broker_that_dies_raises_with_its_last_log_lines(tmp_path: Path) -> None:
    good = own_broker(tmp_path / "kafka")
    good.format()
    # Formatted with a valid config; the start then meets a value the broker cannot parse.
    bad = LocalKafka(home=good.home, port=good.port, controller_port=good.controller_port,
                     jvm_options=BROKER_JVM_OPTIONS, die_with_parent=True,
                     extra_config={"message.max.bytes": "lots"})
    with pytest.raises(BrokerStartError) as caught:
        bad.start(timeout=60)
    assert "exited" in str(caught.value)
    assert "message.max.bytes" in caught.value.log_tail
    assert 0 < len(caught.value.log_tail.splitlines()) <= 30
    assert not bad.pid_file.exists()
    assert not bad.status().running


@pytest.mark.kafka
def test_a_broker_silent_past_the_deadline_is_stopped_and_reported(tmp_path: Path) -> None:
    broker = own_broker(tmp_path / "kafka")
    broker.format()
    with pytest.raises(BrokerStartError, match=r"did not answer .* in time"):
        broker.start(timeout=0.1)
    assert not broker.status().running
    assert not broker.pid_file.exists()


def test_a_taken_port_is_reported_before_launching(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = LocalKafka(home=tmp_path, port=port, controller_port=free_port_pair()[0])
        assert not port_is_free("127.0.0.1", port)
        with pytest.raises(PortInUseError, match=f"port {port}"):
            broker.start()
    assert not (tmp_path / "kafka.pid").exists()


def test_a_broker_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    broker = LocalKafka(home=tmp_path, port=free_port_pair()[0], controller_port=1)
    # A stand-in that looks like this home's broker (its command line names the home's
    # server.properties) and, like a wedged JVM, ignores SIGTERM.
    stuck = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done", "kafka.Kafka",
         str(broker.properties_file)],
        stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert stuck.stdout is not None and stuck.stdout.readline() == b"ready\n"
        broker.pid_file.write_text(f"{stuck.pid}\n")
        assert broker.status().running
        began = time.monotonic()
        assert broker.stop(timeout=0.5) is True
        assert time.monotonic() - began >= 0.5
        assert stuck.wait(timeout=10) == -signal.SIGKILL
        assert not broker.pid_file.exists()
    finally:
        if stuck.poll() is None:
            stuck.kill()
            stuck.wait()


def test_a_stale_pid_file_is_not_mistaken_for_a_broker(tmp_path: Path) -> None:
    broker = LocalKafka(home=tmp_path, port=free_port_pair()[0], controller_port=1)
    broker.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a broker of this home
    assert broker.status().running is False
    assert broker.stop() is False
    assert not broker.pid_file.exists()
    broker.pid_file.write_text("not a pid\n")
    assert broker.status().pid is None


# -- missing programs -------------------------------------------------------------------------

def test_missing_java_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", path_with(tmp_path, "mvn"))
    broker = LocalKafka(home=tmp_path / "kafka", port=free_port_pair()[0], controller_port=1)
    with pytest.raises(MissingDependencyError, match="apt-get install openjdk-17-jre-headless"):
        broker.start()
    with pytest.raises(MissingDependencyError, match="'java' was not found"):
        broker.format()


def test_missing_mvn_says_what_to_install_and_leaves_no_cache(tmp_path: Path,
                                                             monkeypatch) -> None:
    monkeypatch.setenv("PATH", path_with(tmp_path, "java"))
    cache = tmp_path / "cache"
    broker = LocalKafka(home=tmp_path / "kafka", cache_dir=cache)
    with pytest.raises(MissingDependencyError, match="apt-get install maven"):
        broker.ensure_jars()
    assert not (cache / "kafka" / KAFKA_VERSION).exists()


# -- the jar cache -----------------------------------------------------------------------------

@pytest.mark.kafka
def test_cached_jars_are_reused_without_maven(kafka_broker, tmp_path: Path,
                                              monkeypatch) -> None:
    # The session broker filled the shared cache; now Maven is not even on PATH.
    monkeypatch.setenv("PATH", path_with(tmp_path, "java"))
    said: list[str] = []
    lib = LocalKafka(home=tmp_path / "kafka", progress=said.append).ensure_jars()
    assert lib == default_cache_dir() / "kafka" / KAFKA_VERSION / "lib"
    assert any(lib.glob(f"kafka_2.13-{KAFKA_VERSION}.jar"))
    assert any(lib.glob("slf4j-reload4j-*.jar"))
    assert said == [f"using cached Kafka {KAFKA_VERSION} jars in {lib}"]


def test_a_failed_download_leaves_no_half_cache(tmp_path: Path, monkeypatch) -> None:
    # A stand-in for Maven that downloads one jar, then fails the way an offline run does.
    bin_dir = Path(path_with(tmp_path, "java", "mkdir", "touch"))
    fake_mvn = bin_dir / "mvn"
    fake_mvn.write_text("#!/bin/sh\nmkdir -p lib && touch lib/kafka_2.13-0.0.0.jar\n"
                        "echo '[ERROR] Could not resolve dependencies: network is down'\n"
                        "exit 1\n")
    fake_mvn.chmod(fake_mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    cache = tmp_path / "cache"
    with pytest.raises(JarFetchError, match="network is down") as caught:
        ensure_kafka_jars("3.9.2", cache_dir=cache)
    assert caught.value.retriable
    leftovers = [p.name for p in (cache / "kafka").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_a_hung_download_is_cut_off_and_leaves_no_half_cache(tmp_path: Path,
                                                             monkeypatch) -> None:
    bin_dir = Path(path_with(tmp_path, "java", "mkdir", "touch", "sleep"))
    fake_mvn = bin_dir / "mvn"
    fake_mvn.write_text("#!/bin/sh\nmkdir -p lib && touch lib/kafka_2.13-0.0.0.jar\n"
                        "exec sleep 30\n")  # a network that never answers
    fake_mvn.chmod(fake_mvn.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(kafka_jars, "MVN_TIMEOUT_S", 1)
    cache = tmp_path / "cache"
    with pytest.raises(JarFetchError, match=r"did not finish fetching Kafka 3\.9\.2 in 1 s"):
        ensure_kafka_jars("3.9.2", cache_dir=cache)
    assert [p.name for p in (cache / "kafka").iterdir() if not p.name.endswith(".lock")] == []


def test_a_big_log_is_rotated_at_start(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_kafka, "MAX_LOG_BYTES", 10)
    broker = LocalKafka(home=tmp_path)
    broker.log_file.write_text("small\n")
    broker._rotate_log()
    assert broker.logs() == "small\n"
    broker.log_file.write_text("an old run that went on and on\n")
    broker._rotate_log()
    assert not broker.log_file.exists()
    assert (tmp_path / "kafka.log.1").read_text() == "an old run that went on and on\n"


# -- small parts ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"port": 0}, "port must be in 1..65535"),
    ({"controller_port": 70000}, "controller_port must be in 1..65535"),
    ({"port": 9100, "controller_port": 9100}, "must differ"),
    ({"heap": "lots"}, "heap must look like 512m"),
    ({"heap": ""}, "heap must look like 512m"),
])
def test_bad_constructor_arguments_fail_at_once(tmp_path: Path, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        LocalKafka(home=tmp_path, **kwargs)


def test_extra_config_overrides_the_defaults(tmp_path: Path) -> None:
    broker = LocalKafka(home=tmp_path, extra_config={"num.io.threads": "8", "x.y": "z"})
    props = broker.server_properties()
    assert props["num.io.threads"] == "8"
    assert props["x.y"] == "z"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"


def test_logs_returns_the_last_lines(tmp_path: Path) -> None:
    broker = LocalKafka(home=tmp_path)
    assert broker.logs() == ""
    broker.log_file.write_text("".join(f"line {i}\n" for i in range(100)))
    assert broker.logs(3) == "line 97\nline 98\nline 99\n"
    assert broker.logs(0) == ""


def test_the_probe_says_no_to_closed_ports_and_to_non_kafka_servers() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        # Nobody accepts and answers: the probe gives up within its timeout.
        began = time.monotonic()
        assert broker_answers("127.0.0.1", port, timeout=0.3) is False
        assert time.monotonic() - began < 2
    assert broker_answers("127.0.0.1", port, timeout=0.3) is False


@pytest.mark.kafka
def test_the_probe_says_yes_to_the_session_broker(kafka_broker) -> None:
    assert broker_answers("127.0.0.1", kafka_broker.port)
