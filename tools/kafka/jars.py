"""The Apache Kafka jars, fetched once with Maven into driftloop's cache.

The broker runs straight from Maven Central's artifacts (``org.apache.kafka:kafka_2.13`` and
its dependencies) rather than from a release tarball: Maven verifies checksums, resolves the
exact dependency set, and keeps its own repository cache under ``~/.m2``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import JarFetchError, MissingDependencyError

__all__ = ["KAFKA_VERSION", "SLF4J_VERSION", "default_cache_dir", "ensure_kafka_jars", "require"]

log = logging.getLogger(__name__)

# The newest 3.9.x on Maven Central when this was written (3.9 is the last line that still
# ships the log4j-1 (reload4j) logging the asset in assets/ is written for).
KAFKA_VERSION = "3.9.2"
# The slf4j line Kafka 3.9 is built against; the reload4j binding routes it to log4j 1.
SLF4J_VERSION = "1.7.36"
# The log4j 1 implementation Kafka 3.9's own distribution ships (the binding alone would
# pull an older reload4j with known CVEs).
RELOAD4J_VERSION = "1.2.25"
CACHE_ENV = "DRIFTLOOP_CACHE_DIR"
# About 50 MB from Maven Central: a minute on a slow line; far longer means a stuck network.
MVN_TIMEOUT_S = 900

INSTALL_HINTS = {
    "java": "the local Kafka broker needs Java 17 or newer "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)",
    "mvn": "the Kafka jars are fetched with Maven (Debian/Ubuntu: apt-get install maven)",
}

_POM = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by driftloop: the dependency set of a local single-node Kafka broker. -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0
                             http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.driftloop.local</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>{slf4j}</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>{reload4j}</version>
    </dependency>
  </dependencies>
</project>
"""


def default_cache_dir() -> Path:
    """``$DRIFTLOOP_CACHE_DIR``, else ``~/.cache/driftloop``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "driftloop")


def require(program: str) -> str:
    """The full path of ``program`` on ``$PATH``, or :class:`MissingDependencyError` with a hint.

    >>> require("sh").endswith("/sh")
    True
    """
    found = shutil.which(program)
    if found is None:
        hint = INSTALL_HINTS.get(program, "install it and make sure it is on PATH")
        raise MissingDependencyError(f"'{program}' was not found on PATH: {hint}")
    return found


def _quiet(message: str) -> None:
    log.info("%s", message)


def ensure_kafka_jars(version: str = KAFKA_VERSION, *, cache_dir: Path | None = None,
                      progress: Callable[[str], None] | None = None) -> Path:
    """The folder holding every jar of Kafka ``version``, downloading them the first time.

    Jars land in ``<cache>/kafka/<version>/lib``. The download goes to a temporary folder
    beside it that is renamed into place only when Maven succeeded, so an interrupted or
    failed download never leaves a half-filled cache. A file lock keeps concurrent callers
    (parallel test sessions) from downloading twice.
    """
    say = progress or _quiet
    root = (cache_dir or default_cache_dir()) / "kafka"
    target = root / version
    lib = target / "lib"
    if _complete(lib):
        say(f"using cached Kafka {version} jars in {lib}")
        return lib
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(lib):  # another process finished the download while we waited
            say(f"using cached Kafka {version} jars in {lib}")
            return lib
        mvn = require("mvn")
        say(f"downloading Kafka {version} jars with Maven into {lib} (once; about a minute)")
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.partial-", dir=root))
        try:
            (staging / "pom.xml").write_text(_POM.format(kafka=version, slf4j=SLF4J_VERSION,
                                                           reload4j=RELOAD4J_VERSION))
            try:
                result = subprocess.run(
                    [mvn, "-B", "-q", "dependency:copy-dependencies", "-DoutputDirectory=lib"],
                    cwd=staging, capture_output=True, text=True, check=False,
                    timeout=MVN_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                raise JarFetchError(
                    f"Maven did not finish fetching Kafka {version} in {MVN_TIMEOUT_S} s "
                    "(no network, or a proxy to set in ~/.m2/settings.xml?)") from exc
            if result.returncode != 0 or not _complete(staging / "lib"):
                output = (result.stdout + result.stderr).strip().splitlines()
                raise JarFetchError(
                    f"Maven could not fetch org.apache.kafka:kafka_2.13:{version} "
                    f"(exit status {result.returncode}); last output:\n"
                    + "\n".join(output[-20:]))
            if target.exists():  # a stale, incomplete folder from an older layout
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    say(f"Kafka {version} jars ready in {lib}")
    return lib


def _complete(lib: Path) -> bool:
    # Only a finished download is ever renamed to this path; the check on the broker jar
    # also rejects a folder someone emptied by hand.
    return lib.is_dir() and any(lib.glob("kafka_2.13-*.jar"))
