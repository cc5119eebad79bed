"""One click module per ``driftloop`` command, registered in :data:`driftloop.tools.cli.COMMANDS`.

Each module owns its options and imports what it runs only when it runs, so
``driftloop --help`` stays fast.
"""

from __future__ import annotations

__all__: list[str] = []
