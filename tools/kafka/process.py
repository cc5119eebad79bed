"""The broker as a process: a fresh cluster id, a group of its own, and a death signal.

The broker leads its own session so a stop reaches its JVM children; a broker started for
tests dies with the process that started it.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import signal
import sys
import uuid

__all__ = ["cluster_id", "die_with_parent", "signal_group"]


def cluster_id() -> str:
    """A random Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    >>> len(cluster_id())
    22
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka's own generator avoids these (CLI parsing)
            return text


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pid`` leads, and to ``pid`` itself.

    The broker leads its own session (``start_new_session``), so its JVM children get it too.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies (a ``preexec_fn``; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
