"""One typed, frozen settings object, read from a TOML file and DRIFTLOOP_* variables.

Precedence, highest first: keyword arguments, environment (``DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS``,
nested sections joined by ``__``), the TOML file (``--config``, else ``$DRIFTLOOP_CONFIG``,
else ``./driftloop.toml`` when present), defaults. Secrets are :class:`pydantic.SecretStr`
and print as ``**********``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pydantic
from pydantic import Field, PrivateAttr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ..errors import SettingsError
from ..fields import SLUG_PATTERN
from .artifacts import ArtifactSettings
from .kafka import KafkaSettings
from .label_studio import LabelStudioSettings
from .learner import LearnerSettings
from .review import ReviewSettings
from .serving import ServingSettings
from .tasks import TaskSettings
from .trust import TrustSettings
from .worker import WorkerSettings

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG_FILE", "Settings", "load_settings"]

CONFIG_ENV = "DRIFTLOOP_CONFIG"
DEFAULT_CONFIG_FILE = "driftloop.toml"


class Settings(BaseSettings):
    """Everything driftloop's processes need to know, validated once at start.

    Examples
    --------
    >>> from driftloop.schemas.settings import Settings
    >>> s = Settings(kafka={"bootstrap_servers": "127.0.0.1:19092", "topic_prefix": "dev.",
    ...                     "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
    ...                     "sasl_username": "svc", "sasl_password": "hunter2"})
    >>> s.kafka.topic("feedback")
    'dev.feedback'
    >>> "hunter2" in repr(s) or "hunter2" in str(s.safe_dict())
    False
    >>> Settings(worker={"web_port": 70000})
    Traceback (most recent call last):
    ...
    driftloop.schemas.errors.SettingsError: invalid settings ...: worker.web_port: Input should ...
    """

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLOOP_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        toml_file=None,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    learner: LearnerSettings = Field(default_factory=LearnerSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    label_studio: LabelStudioSettings = Field(default_factory=LabelStudioSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    tasks: dict[str, TaskSettings] = Field(default_factory=dict)
    deployment: str | None = Field(
        None, min_length=1, max_length=64, pattern=SLUG_PATTERN,
        description="this deployment's name, unique among deployments sharing an artifact "
                    "store or comparing registries: it is in every version id, each "
                    "version's metadata and the gate pool's path (None = derived from "
                    "kafka.bootstrap_servers and kafka.topic_prefix; set it when processes "
                    "reach the broker under different addresses)")
    _config_file: Path | None = PrivateAttr(None)

    def __init__(self, /, **values: Any) -> None:
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            lines = []
            for err in exc.errors(include_url=False):
                where = ".".join(str(part) for part in err["loc"]) or "settings"
                lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
            raise SettingsError(f"invalid settings{_source()}: " + "; ".join(lines)) from None
        except ValueError as exc:  # TOML syntax errors and env values that are not valid JSON
            raise SettingsError(f"invalid settings{_source()}: {exc}") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _CONFIG_FILE.get("path")
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were read from (absolute), None without one: a
        parent hands it to the processes it starts, so they read the same file.

        >>> Settings().config_file is None
        True
        """
        return self._config_file

    @property
    def deployment_id(self) -> str:
        """``deployment``, else a name derived from the broker address and topic prefix.

        >>> Settings(deployment="eu-prod").deployment_id
        'eu-prod'
        >>> a = Settings(kafka={"topic_prefix": "a."}).deployment_id
        >>> a.startswith("d-"), a == Settings(kafka={"topic_prefix": "b."}).deployment_id
        (True, False)
        """
        if self.deployment is not None:
            return self.deployment
        where = f"{self.kafka.bootstrap_servers}\0{self.kafka.topic_prefix}"
        return f"d-{hashlib.sha256(where.encode()).hexdigest()[:12]}"

    def task(self, name: str) -> TaskSettings:
        """Settings of one task; tasks not configured get the defaults."""
        return self.tasks.get(name, TaskSettings())

    def safe_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data with every secret masked (for logs and ``config``)."""
        return self.model_dump(mode="json")


# Which TOML file the next Settings() reads; set by load_settings (pydantic-settings reads
# the file name from class config, so it is passed through here rather than per instance).
_CONFIG_FILE: dict[str, Path | None] = {"path": None}


def _source() -> str:
    path = _CONFIG_FILE["path"]
    return f" (from {path} and DRIFTLOOP_* variables)" if path else " (from DRIFTLOOP_* variables)"


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; raise :class:`SettingsError` naming the bad field.

    ``config`` is a TOML file; without it ``$DRIFTLOOP_CONFIG`` or ``./driftloop.toml`` is
    used when present. A named file that does not exist is an error, not a silent default.
    """
    path: Path | None = None
    if config is not None:
        path = Path(config)
    elif os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is not None and not path.is_file():
        raise SettingsError(f"config file {path} does not exist")
    _CONFIG_FILE["path"] = path
    try:
        settings = Settings(**overrides)
        settings._config_file = None if path is None else path.resolve()
        return settings
    finally:
        _CONFIG_FILE["path"] = None
