"""The learner's heartbeat file and ``driftloop learner health``, the compose health check."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from driftloop.learner.heartbeat import HEARTBEAT_FILE, Heartbeat, read_heartbeat
from driftloop.tools.cli import cli


def health(cache_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["learner", "health", *args],
                                env={"DRIFTLOOP_LEARNER__CACHE_DIR": str(cache_dir)})
    return result.exit_code, result.output


def test_no_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    code, output = health(tmp_path)
    assert code == 1 and "no heartbeat" in output


def test_a_running_heartbeat_is_healthy_and_a_stale_one_is_not(tmp_path: Path) -> None:
    async def run_a_while() -> None:
        async with Heartbeat(tmp_path / HEARTBEAT_FILE, every_s=0.01,
                             status=lambda: {"handled": 2}):
            await asyncio.sleep(0.05)

    asyncio.run(run_a_while())
    code, output = health(tmp_path)
    assert code == 0 and "2 requests handled" in output
    stale = {"ts": time.time() - 600, "pid": 1}
    (tmp_path / HEARTBEAT_FILE).write_bytes(orjson.dumps(stale))
    code, output = health(tmp_path, "--max-age", "60")
    assert code == 1 and "last heartbeat" in output and "s ago" in output
    code, output = health(tmp_path, "--max-age", "60", "--json")
    shown = orjson.loads(output)
    assert code == 1 and shown["healthy"] is False and shown["heartbeat_age_s"] > 590


@pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b'{"ts": "yesterday"}'])
def test_a_garbled_heartbeat_reads_as_none(tmp_path: Path, content: bytes) -> None:
    (tmp_path / HEARTBEAT_FILE).write_bytes(content)
    assert read_heartbeat(tmp_path / HEARTBEAT_FILE) is None
    assert health(tmp_path)[0] == 1


def test_invalid_period_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="every_s"):
        Heartbeat(tmp_path / HEARTBEAT_FILE, every_s=0)
