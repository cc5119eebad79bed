"""Content-addressed adapter store: a local folder, or any fsspec URL (``s3://...``).

An adapter folder is checked (JSON configs and ``.safetensors`` weights only, no sub-folders,
bounded size), hashed, written under a temporary name and moved to ``<root>/<sha256>/``, so a
reader never sees half an adapter and the same bytes are stored once. Loading copies the
files to a private local folder, re-hashes them and refuses any mismatch: what is loaded is
exactly what was published, never a pickle from the outside world.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import AdapterFormatError, ArtifactIntegrityError, ArtifactLocationError

__all__ = ["ALLOWED_SUFFIXES", "ArtifactStore", "StoredArtifact", "adapter_digest"]

ALLOWED_SUFFIXES = (".json", ".safetensors", ".md")  # .md: PEFT's model card
_HEX = frozenset("0123456789abcdef")
# PEFT writes three files; a folder listing thousands is not an adapter.
MAX_ADAPTER_FILES = 32


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """Where an adapter lives, its digest and its size in bytes."""

    uri: str
    sha256: str
    size_bytes: int


def _check_files(folder: Path, max_bytes: int) -> list[Path]:
    if not folder.is_dir():
        raise AdapterFormatError(f"{folder} is not a folder")
    files = sorted(folder.iterdir())
    if not files:
        raise AdapterFormatError(f"{folder} is empty")
    total = 0
    for path in files:
        if path.is_symlink() or not path.is_file():
            raise AdapterFormatError(f"{path.name}: only plain files are allowed in an adapter")
        if path.suffix not in ALLOWED_SUFFIXES:
            raise AdapterFormatError(f"{path.name}: only {', '.join(ALLOWED_SUFFIXES)} files "
                                     "are allowed (no pickles, no code)")
        total += path.stat().st_size
    if total > max_bytes:
        raise AdapterFormatError(f"adapter is {total} bytes, the limit is {max_bytes}")
    if not any(p.suffix == ".safetensors" for p in files):
        raise AdapterFormatError(f"{folder} has no .safetensors weights")
    return files


def adapter_digest(folder: Path, *, max_bytes: int = 1 << 40) -> tuple[str, int]:
    """``(sha256, size)`` of an adapter folder: a hash over each file's name and content.

    File names are part of the digest (renaming a file changes it); order is by name, so the
    same files always give the same digest.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "adapter_model.safetensors").write_bytes(b"weights")
    >>> digest, size = adapter_digest(folder)
    >>> len(digest), size
    (64, 7)
    """
    outer = hashlib.sha256()
    size = 0
    for path in _check_files(folder, max_bytes):
        inner = hashlib.sha256()
        with path.open("rb") as data:
            for chunk in iter(lambda: data.read(1 << 20), b""):
                inner.update(chunk)
                size += len(chunk)
        outer.update(f"{path.name}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest(), size


class ArtifactStore:
    """Adapters by sha256 under one root URL.

    Parameters
    ----------
    url
        A local path or an fsspec URL; ``file://`` and bare paths are the local disk.
    allowed_schemes
        URL schemes this store will read or write; anything else is refused.
    max_bytes
        Largest adapter accepted.

    Examples
    --------
    >>> import tempfile
    >>> store = ArtifactStore(tempfile.mkdtemp())
    >>> adapter = Path(tempfile.mkdtemp())
    >>> _ = (adapter / "adapter_config.json").write_text("{}")
    >>> _ = (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    >>> stored = store.put(adapter)
    >>> store.put(adapter) == stored  # same bytes, same name, stored once
    True
    >>> sorted(p.name for p in store.fetch(stored.uri, stored.sha256).iterdir())
    ['adapter_config.json', 'adapter_model.safetensors']
    """

    def __init__(self, url: str, *, allowed_schemes: tuple[str, ...] = ("file",),
                 max_bytes: int = 512 * 1024 * 1024,
                 cache_dir: Path | None = None) -> None:
        import fsspec

        scheme = urlsplit(url).scheme if "://" in url else "file"
        if scheme not in allowed_schemes:
            raise ArtifactLocationError(f"store scheme {scheme!r} is not allowed "
                                        f"(allowed: {', '.join(allowed_schemes)})")
        self.scheme = scheme
        self.allowed_schemes = tuple(allowed_schemes)
        self.max_bytes = max_bytes
        self.fs, root = fsspec.core.url_to_fs(url)
        if scheme == "file":
            root = str(Path(root).expanduser().resolve())
            Path(root).mkdir(parents=True, exist_ok=True)
        self.root = root.rstrip("/")
        self.cache_dir = cache_dir

    def uri_for(self, name: str) -> str:
        """The URI of ``name`` (an adapter's sha256, or a path under the root)."""
        path = f"{self.root}/{name}"
        return f"file://{path}" if self.scheme == "file" else f"{self.scheme}://{path}"

    def checked_path(self, uri: str, *, folder: str = "", suffix: str = "") -> str:
        """The store path a URI names, refusing other schemes and anything outside the root
        (or its ``folder``); the name must be a sha256 (with ``suffix``)."""
        parts = urlsplit(uri)
        scheme = parts.scheme or "file"
        if scheme not in self.allowed_schemes or scheme != self.scheme:
            raise ArtifactLocationError(f"{uri}: scheme {scheme!r} is not this store's "
                                        f"({self.scheme!r})")
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise ArtifactLocationError(f"{uri}: a file URI names no host")
        # The store writes plain names: a query or fragment (which some fsspec backends
        # read) or a control character (a NUL) is a trick, not an adapter. Percent-encoded
        # names (%2e%2e) are never decoded, so they fail the root and digest checks below.
        if parts.query or parts.fragment or not uri.isprintable():
            raise ArtifactLocationError(f"{uri!r}: queries, fragments and control characters "
                                        "are not allowed in an adapter URI")
        path = parts.path if scheme == "file" else f"{parts.netloc}{parts.path}"
        path = posixpath.normpath(path)
        parent, name = posixpath.split(path)
        digest = name.removesuffix(suffix) if name.endswith(suffix) else None
        expected = f"{self.root}/{folder}" if folder else self.root
        if (parent.rstrip("/") != expected or digest is None or len(digest) != 64
                or not set(digest) <= _HEX):
            what = "an adapter" if not folder else f"an object of the {folder}/ folder"
            raise ArtifactLocationError(f"{uri} is not {what} of the store at {self.root}")
        if scheme == "file" and os.path.realpath(path) != path:
            raise ArtifactLocationError(f"{uri} is a symbolic link (out of the store)")
        return path

    def put(self, folder: Path) -> StoredArtifact:
        """Store an adapter folder under its digest (a no-op when already stored)."""
        digest, size = adapter_digest(folder, max_bytes=self.max_bytes)
        final = f"{self.root}/{digest}"
        if not self.fs.exists(final):
            staging = f"{self.root}/.incoming-{uuid.uuid4().hex}"
            self.fs.makedirs(staging, exist_ok=True)
            for path in sorted(folder.iterdir()):
                self.fs.put_file(str(path), f"{staging}/{path.name}")
            try:
                if self.scheme == "file":
                    # rename(2) is atomic and refuses a non-empty target (shutil.move, which
                    # fsspec uses locally, would nest the folder inside it instead).
                    os.rename(staging, final)
                else:
                    self.fs.mv(staging, final, recursive=True)
            except OSError:
                # Another learner stored the same bytes meanwhile: content-addressed, so fine.
                if not self.fs.exists(final):
                    raise
                self.fs.rm(staging, recursive=True)
        return StoredArtifact(self.uri_for(digest), digest, size)

    def fetch(self, uri: str, sha256: str, dest: Path | None = None) -> Path:
        """Copy an adapter to a local folder, verify its sha256, return the folder.

        Raises :class:`ArtifactIntegrityError` when the bytes do not hash to ``sha256`` (the
        copy is deleted) and :class:`ArtifactLocationError` for URIs outside the store.
        """
        path = self.checked_path(uri)
        if posixpath.basename(path) != sha256:
            raise ArtifactIntegrityError(f"{uri} is not named by the expected sha256 {sha256}")
        if not self.fs.isdir(path):
            raise ArtifactLocationError(f"{uri} does not exist in the store")
        base = dest if dest is not None else Path(tempfile.mkdtemp(prefix="driftloop-adapter-",
                                                                  dir=self.cache_dir))
        local = base / sha256
        local.mkdir(parents=True, exist_ok=True)
        try:
            entries = self._listing(uri, path)
            for entry in entries:
                name = posixpath.basename(entry["name"].rstrip("/"))
                self.fs.get_file(entry["name"], str(local / name))
            # Checked again on the copy: a file that grew while it was read is caught here.
            actual, _ = adapter_digest(local, max_bytes=self.max_bytes)
        except BaseException:
            shutil.rmtree(local, ignore_errors=True)
            raise
        if actual != sha256:
            shutil.rmtree(local, ignore_errors=True)
            raise ArtifactIntegrityError(f"{uri}: content hashes to {actual}, expected {sha256}: "
                                         "refusing to load a tampered or corrupt adapter")
        return local

    def _listing(self, uri: str, path: str) -> list[dict]:
        """The adapter's files, refused before any byte is copied when they are not plain
        JSON/safetensors files, too many, or larger together than ``max_bytes``."""
        entries = self.fs.ls(path, detail=True)
        if len(entries) > MAX_ADAPTER_FILES:
            raise AdapterFormatError(f"{uri}: {len(entries)} entries; an adapter has at most "
                                     f"{MAX_ADAPTER_FILES}")
        total = 0
        for entry in entries:
            name = posixpath.basename(entry["name"].rstrip("/"))
            if entry.get("islink") or (self.scheme == "file" and os.path.islink(entry["name"])):
                raise AdapterFormatError(f"{uri}: {name} is a symbolic link (out of the store)")
            if entry["type"] != "file" or not name.endswith(ALLOWED_SUFFIXES):
                raise AdapterFormatError(f"{uri}: unexpected entry {name!r} in an adapter")
            total += int(entry.get("size") or 0)
        if total > self.max_bytes:
            raise AdapterFormatError(f"{uri}: adapter is {total} bytes, the limit is "
                                     f"{self.max_bytes}: not downloaded")
        return entries
