"""A broker data folder on a small disk of its own that a scenario can fill and free.

The disk is a tmpfs mounted over the folder (memory, not the machine's disk), so filling it
harms nothing else. Mounting needs the right to mount (root, or CAP_SYS_ADMIN in a
container); without it the scenario that needs the disk is reported as not run, with why.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

from ...errors import ToolsError

__all__ = ["DiskUnavailable", "SmallDisk"]

_CHUNK = 4 * 1024 * 1024


class DiskUnavailable(ToolsError):
    """This machine does not let the bench mount a disk of its own."""


class SmallDisk:
    """A tmpfs of ``size_bytes`` over ``folder``; :meth:`fill` takes all its free space.

    >>> disk = SmallDisk(Path("/nonexistent/data"), size_bytes=64 * 1024 * 1024)
    >>> disk.ballast.name, disk.mounted
    ('.ballast', False)
    """

    def __init__(self, folder: Path, *, size_bytes: int) -> None:
        self.folder = folder
        self.size_bytes = size_bytes
        self.ballast = folder / ".ballast"
        self.mounted = False

    def mount(self) -> None:
        """Mount the tmpfs (the folder must be empty: the broker is formatted on it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}",
                              "tmpfs", str(self.folder)], capture_output=True, text=True)
        if run.returncode != 0:
            raise DiskUnavailable(f"cannot mount a tmpfs for the broker's data "
                                  f"({run.stderr.strip() or run.returncode}); this scenario "
                                  "needs the right to mount (root or CAP_SYS_ADMIN)")
        self.mounted = True

    def fill(self) -> int:
        """Write a ballast file until the disk is full; the bytes written."""
        written = 0
        block = b"\0" * _CHUNK
        with open(self.ballast, "wb", buffering=0) as out:
            size = len(block)
            while True:
                try:
                    written += out.write(block[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if size <= 4096:
                        break
                    size //= 2  # the last pages
        return written

    def free(self) -> None:
        """Remove the ballast: what an operator does when the broker's disk filled up."""
        self.ballast.unlink(missing_ok=True)

    def used_bytes(self) -> int:
        stat = os.statvfs(self.folder)
        return (stat.f_blocks - stat.f_bfree) * stat.f_frsize

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], capture_output=True)
            self.mounted = False
