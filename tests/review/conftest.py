"""Fixtures of the review tests: ``label_studio`` is a real Label Studio server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka_helpers import free_port
from label_studio_server import LabelStudioServer, label_studio_program


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """A running Label Studio (one per session, SQLite in a temporary folder) with an admin
    whose legacy API token is ``label_studio.token``.

    Fails, never skips, when Label Studio is not installed: the message names
    ``tools/dev setup``, which installs it.
    """
    program = label_studio_program()
    server = LabelStudioServer(program, tmp_path_factory.mktemp("label-studio"), free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
