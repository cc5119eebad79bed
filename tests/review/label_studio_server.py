"""A real Label Studio server for tests, run from its own virtual environment.

Label Studio pins Django and friends against driftloop's pins, so ``tools/dev setup`` (or
``tools/dev setup-label-studio``) installs it into ``.venv-label-studio`` (or
``$DRIFTLOOP_LABEL_STUDIO_VENV``). :class:`LabelStudioServer` starts ``label-studio start``
headless on a free port, with its SQLite database and media in a folder of its own and an
admin user whose legacy API token is known, waits for ``/health/`` and stops it.

Also the few raw HTTP calls a test makes as a reviewer would (``api``), on urllib: the
tests must not check the bridge's client with itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from waiting import wait_until

from driftloop.tools.kafka.process import die_with_parent

__all__ = ["LABEL_STUDIO_VENV_ENV", "LabelStudioServer", "label_studio_program"]

LABEL_STUDIO_VENV_ENV = "DRIFTLOOP_LABEL_STUDIO_VENV"
REPO = Path(__file__).resolve().parents[2]
# The first start creates the database (about 30 s alone; more on two busy cores).
START_TIMEOUT_S = 240.0


def label_studio_program() -> Path:
    """The ``label-studio`` program of the environment ``tools/dev setup`` makes; an
    :class:`AssertionError` naming that command when it is missing."""
    venv = Path(os.environ.get(LABEL_STUDIO_VENV_ENV) or REPO / ".venv-label-studio")
    program = venv / "bin" / "label-studio"
    assert program.is_file(), (
        f"Label Studio is not installed in {venv}: run `tools/dev setup` (or `tools/dev "
        f"setup-label-studio`); ${LABEL_STUDIO_VENV_ENV} names another environment")
    return program


class LabelStudioServer:
    """``label-studio start`` on ``port``, state in ``home``, an admin with a known token."""

    username = "admin@driftloop.test"
    password = "driftloop-test-password"
    token = "driftloop0test0legacy0token"

    def __init__(self, program: Path, home: Path, port: int) -> None:
        self.program, self.home, self.port = program, home, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_file = home / "label-studio.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        env = {**os.environ,
               "LABEL_STUDIO_BASE_DATA_DIR": str(self.home),
               "LABEL_STUDIO_USERNAME": self.username,
               "LABEL_STUDIO_PASSWORD": self.password,
               "LABEL_STUDIO_USER_TOKEN": self.token,
               # Since 1.16 a new organization refuses legacy tokens unless told otherwise.
               "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
               "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
               # No calls out: the version check asks PyPI, analytics go to Heartex.
               "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false"}
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.program), "start", "--no-browser", "--internal-host", "127.0.0.1",
                 "--port", str(self.port), "--data-dir", str(self.home),
                 "--database", str(self.home / "label_studio.sqlite3")],
                cwd=self.home, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        wait_until(self._healthy, timeout, f"Label Studio answering {self.url}/health/",
                   interval=0.5, seen=self.log_tail)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"label-studio exited with {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/health/", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: it and nothing else
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    # -- what a reviewer (or an admin) does, through the REST API ----------------------------
    def api(self, method: str, path: str, body: Any = None, *,
            token: str | None = None) -> Any:
        """One REST call with the admin's token (or ``token``); its JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"Token {token or self.token}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(raw) if raw else None
