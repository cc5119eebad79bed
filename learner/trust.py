"""Which base models and version events a learner or a replica acts on.

A version event or a training request names a base model and a parent version; whoever can
write those topics would otherwise choose what every process hands to ``from_pretrained``.
:class:`Trust` answers from the settings alone: the packaged defaults, each configured
task's ``base_model`` and ``trust.base_models`` are trusted, a local path listed in
``trust.base_model_sha256`` only while its weights hash to that digest, and with
``trust.signing_key`` a version event only with a valid signature
(:mod:`driftloop.schemas.signing`).

Examples
--------
>>> from driftloop.schemas.settings import Settings
>>> trust = Trust(Settings(tasks={"support": {"base_model": "org/support-encoder"}}))
>>> trust.check_base_model("org/support-encoder")
>>> trust.check_base_model("sentence-transformers/all-MiniLM-L6-v2")  # a packaged default
>>> trust.check_base_model("evil/model")
Traceback (most recent call last):
...
driftloop.learner.errors.UntrustedModelError: base model 'evil/model' is not trusted ...
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..schemas.events import ModelVersion
from ..schemas.settings import Settings
from ..schemas.signing import deployment_key, sign_version, version_signature_ok
from .errors import ModelLoadError, UntrustedModelError, UntrustedVersionError
from .models.resident import DEFAULT_BASE_MODELS, resolve_base_model

__all__ = ["ANY_MODEL", "Trust", "weights_file", "weights_sha256"]

log = logging.getLogger(__name__)

ANY_MODEL = "*"
"""In ``trust.base_models``: trust every base model (a development setting)."""

_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin")
_CHUNK = 1 << 20


def weights_file(path: Path) -> Path:
    """The file a model's weights digest covers: the file itself, or a folder's one weights
    file (a sharded checkpoint has no single digest to list: an error rather than a guess)."""
    if not path.is_dir():
        return path
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if len(files) != 1:
        raise UntrustedModelError(f"{path}: {len(files)} weights files; a digest in "
                                  "trust.base_model_sha256 names exactly one")
    return files[0]


def weights_sha256(path: Path) -> str:
    """sha256 of a model's weights (see :func:`weights_file`)."""
    digest = hashlib.sha256()
    with weights_file(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Trust:
    """The deployment's trust policy, built once per process from its settings."""

    def __init__(self, settings: Settings) -> None:
        trust = settings.trust
        self.any_model = ANY_MODEL in trust.base_models
        self.base_models = frozenset(
            {*DEFAULT_BASE_MODELS.values(), *trust.base_models, *trust.base_model_sha256,
             *(task.base_model for task in settings.tasks.values() if task.base_model)}
            - {ANY_MODEL})
        self.digests = dict(trust.base_model_sha256)
        self.paths = dict(settings.learner.base_model_paths)
        self.key = deployment_key(settings)
        self._verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> sha256

    def check_base_model(self, name: str) -> None:
        """Return when ``name`` may be loaded; raise :class:`UntrustedModelError` if not."""
        if name in self.digests:
            self._check_digest(name, self.digests[name])
            return
        if name in self.base_models or self.any_model:
            return
        raise UntrustedModelError(
            f"base model {name!r} is not trusted (trusted: the packaged defaults, the tasks' "
            "base_model and trust.base_models)")

    def _check_digest(self, name: str, expected: str) -> None:
        path = Path(name).expanduser()
        if not path.exists():
            raise UntrustedModelError(f"base model {name!r}: no such local path to check "
                                      "against trust.base_model_sha256")
        actual = self._digest(weights_file(path))
        if actual != expected:
            raise UntrustedModelError(f"base model {name!r}: weights hash to {actual}, "
                                      f"trust.base_model_sha256 says {expected}")

    def weights_digest(self, name: str) -> str | None:
        """sha256 of the local weights file a base model id loads (a packaged checkpoint,
        a GGUF file, a local copy from ``learner.base_model_paths``), recorded with every
        adapter trained on it; None for a hub id or a folder without one weights file."""
        try:
            source, gguf_file = resolve_base_model(self.paths.get(name, name))
            path = Path(source) / gguf_file if gguf_file else Path(source)
            return self._digest(weights_file(path)) if path.exists() else None
        except (ModelLoadError, UntrustedModelError, OSError):
            return None

    def _digest(self, weights: Path) -> str:
        stat = weights.stat()  # hashed again whenever the file changes
        key = (str(weights), stat.st_size, stat.st_mtime_ns)
        if key not in self._verified:
            self._verified[key] = weights_sha256(weights)
        return self._verified[key]

    def sign(self, event: ModelVersion) -> ModelVersion:
        """``event`` signed with the deployment's key (unchanged when there is none)."""
        return sign_version(event, self.key) if self.key is not None else event

    def check_version(self, event: ModelVersion) -> None:
        """Raise :class:`UntrustedVersionError` when ``event`` must not be acted on: a
        missing or wrong signature (with a key), or an untrusted base model."""
        if self.key is not None and not version_signature_ok(event, self.key):
            what = "unsigned" if event.signature is None else "wrongly signed"
            raise UntrustedVersionError(f"version {event.version_id} is {what} "
                                        "(trust.signing_key is set)")
        try:
            self.check_base_model(event.base_model)
        except UntrustedModelError as exc:
            raise UntrustedVersionError(f"version {event.version_id}: {exc}") from None

    def signed_by_us(self, event: ModelVersion) -> bool:
        """False only for an event a keyed deployment cannot verify (logged)."""
        if self.key is None or version_signature_ok(event, self.key):
            return True
        log.warning("ignoring version %s of task %s: %s (trust.signing_key is set)",
                    event.version_id, event.task,
                    "unsigned" if event.signature is None else "wrong signature")
        return False
