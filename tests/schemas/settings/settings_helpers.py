"""What the settings tests share: a clean environment, a TOML writer, a SASL file with a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["SASL_TOML", "SECRET", "clean_environment", "write_toml"]

SECRET = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's own DRIFTLOOP_* variables or ./driftloop.toml must not leak in.
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


SASL_TOML = f"""
[kafka]
bootstrap_servers = "toml-host:9092"
topic_prefix = "toml."
security_protocol = "SASL_PLAINTEXT"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "svc"
sasl_password = "{SECRET}"
"""
