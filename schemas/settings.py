"""One typed, frozen settings object, read from a TOML file and DRIFTLOOP_* variables.

Precedence, highest first: keyword arguments, environment (``DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS``,
nested sections joined by ``__``), the TOML file (``--config``, else ``$DRIFTLOOP_CONFIG``,
else ``./driftloop.toml`` when present), defaults. Secrets are :class:`pydantic.SecretStr`
and print as ``**********``.

Settings live beside the contracts because they are one: ``streams`` and ``learner`` share
nothing else, and must agree on the broker, the topic names and the artifact store.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .enums import TaskKind
from .errors import SettingsError
from .redact import register_secret
from .topics import Topic, topic_name

__all__ = [
    "ABTestSettings",
    "ActiveSettings",
    "ArtifactSettings",
    "BufferSettings",
    "DriftSettings",
    "JoinSettings",
    "KafkaSettings",
    "LearnerSettings",
    "ServingSettings",
    "Settings",
    "TaskSettings",
    "TriggerSettings",
    "WorkerSettings",
    "load_settings",
]

CONFIG_ENV = "DRIFTLOOP_CONFIG"
DEFAULT_CONFIG_FILE = "driftloop.toml"


def _data_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "driftloop"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """Where the broker is and how every Kafka client (Faust, aiokafka) talks to it."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="host:port[,host:port...]")
    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._\-]*$",
                              description="prepended to every driftloop topic name")
    client_id: str = "driftloop"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected host:port, got {server.strip()!r}")
        return value

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        # From the moment a process holds these, no log record of it may show them (client
        # libraries log their requests, the SASL one included).
        for secret in (self.sasl_password, self.ssl_password):
            if secret is not None:
                register_secret(secret.get_secret_value())
        if self.security_protocol.startswith("SASL"):
            missing = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"security_protocol={self.security_protocol} needs "
                                 f"{', '.join(missing)}")
        if self.uses_ssl:
            # A typo in a path should stop the process at start, not at its first connection.
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                path = getattr(self, name)
                if path is not None and not path.is_file():
                    raise ValueError(f"{name}: {path} does not exist")
            if self.ssl_keyfile is not None and self.ssl_certfile is None:
                raise ValueError("ssl_keyfile needs ssl_certfile")
        return self

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def topic(self, topic: Topic | str) -> str:
        """The prefixed name of a driftloop topic."""
        return topic_name(topic, self.topic_prefix)

    def ssl_context(self) -> ssl.SSLContext | None:
        """An SSL context built from the ``ssl_*`` files, or None for plaintext protocols.

        Files that are not certificates, or a key that ``ssl_password`` does not open, raise
        :class:`SettingsError` naming the setting.
        """
        if not self.uses_ssl:
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        except (ssl.SSLError, OSError) as exc:
            raise SettingsError(f"kafka.ssl_cafile: cannot load {self.ssl_cafile}: {exc}") from None
        if self.ssl_certfile:
            try:
                context.load_cert_chain(
                    str(self.ssl_certfile),
                    str(self.ssl_keyfile) if self.ssl_keyfile else None,
                    self.ssl_password.get_secret_value() if self.ssl_password else None,
                )
            except (ssl.SSLError, OSError) as exc:
                raise SettingsError(
                    f"kafka.ssl_certfile/ssl_keyfile: cannot load the certificate or its key "
                    f"(wrong ssl_password?): {exc}") from None
        return context

    def child_env(self) -> dict[str, str]:
        """``DRIFTLOOP_KAFKA__*`` variables that give a child process these settings, secrets
        and security included (a child started with a clean environment or without the
        parent's ``--config`` would otherwise talk PLAINTEXT to a secured broker).

        >>> KafkaSettings(topic_prefix="t.").child_env()["DRIFTLOOP_KAFKA__TOPIC_PREFIX"]
        't.'
        """
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"DRIFTLOOP_KAFKA__{name.upper()}"] = str(value)
        return env

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client: servers, client id, security."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        if self.security_protocol.startswith("SASL"):
            assert self.sasl_password is not None
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password.get_secret_value(),
            )
        return kwargs


class ArtifactSettings(_Section):
    """Where adapters are stored: a local folder or any fsspec URL (``s3://bucket/prefix``)."""

    store_url: str = Field(default_factory=lambda: str(_data_home() / "artifacts"))
    allowed_schemes: tuple[str, ...] = ("file", "s3", "gs", "az", "memory")
    max_artifact_bytes: int = Field(512 * 1024 * 1024, gt=0)


class TaskSettings(_Section):
    """How the learner treats one task."""

    kind: TaskKind = TaskKind.CLASSIFICATION
    base_model: str | None = Field(None, description="hub name or local path; None = default")
    labels: tuple[str, ...] = ()
    prompt_template_id: str | None = None
    embedding_dim: int | None = Field(None, gt=0)
    challenge_suite: Path | None = Field(
        None, description="JSONL challenge prompts (input, expected, tags) the gate replays")
    challenge_growth: int = Field(
        0, ge=0, description="held-out examples the parent got wrong that a promoted version "
                             "adds to the challenge suite (0: the suite only grows by hand)")
    adapter_per_domain: bool = Field(
        False, description="one adapter lineage per domain: a request trains the lineage of "
                           "its new examples' domain (which must agree); False = one per task")
    domain_transfer: bool = Field(
        True, description="with adapter_per_domain: a new domain's first adapter starts from "
                          "the head of the domain with the closest embedding centroid "
                          "(cosine); False = from scratch")
    challenge_error_cap: int = Field(
        200, ge=0, description="most probes from corrected interactions (real errors) the "
                               "challenge suite holds; once reached none are added (0: none)")
    teacher: str | None = Field(
        None, min_length=1,
        description="knowledge distillation: a model version id from the registry (an adapter "
                    "over the same labels, any base), else a hub name or local path of a "
                    "fine-tuned sequence-classification model; None = no teacher")
    distill_temperature: float = Field(
        2.0, gt=0.0, le=100.0,
        description="softmax temperature T of the teacher's and student's outputs (the "
                    "soft-target term is scaled by T^2)")
    distill_weight: float = Field(
        0.5, ge=0.0, le=1.0,
        description="share of the soft-target loss: weight * T^2 * KL + (1 - weight) * "
                    "cross-entropy on the labels (0: labels only, 1: teacher only)")
    teacher_tolerance: float | None = Field(
        None, ge=0.0, le=1.0,
        description="gate: the student's held-out score must reach the teacher's minus this "
                    "(None: the teacher's score is recorded, not required)")

    @model_validator(mode="after")
    def _check_distillation(self) -> TaskSettings:
        if self.teacher is not None and self.kind is not TaskKind.CLASSIFICATION:
            raise ValueError("teacher: distillation is implemented for classification tasks "
                             "only (token-level distillation of generation is not)")
        if self.teacher_tolerance is not None and self.teacher is None:
            raise ValueError("teacher_tolerance needs a teacher")
        return self


class JoinSettings(_Section):
    """How feedback meets its interaction."""

    window_s: float = Field(3600.0, gt=0, description="event-time window of the join")
    max_entries: int = Field(200_000, gt=0,
                             description="interactions + waiting feedback kept per task")


class DriftSettings(_Section):
    """Drift monitors (chosen by measurement: `driftloop worker detectors`)."""

    detector: Literal["page_hinkley", "adwin", "kswin"] = "page_hinkley"
    threshold: float = Field(25.0, gt=0, description="Page-Hinkley threshold on z-scores")
    delta: float = Field(0.5, ge=0, description="Page-Hinkley allowance on z-scores")
    adwin_delta: float = Field(0.002, gt=0, lt=1, description="ADWIN confidence")
    block_size: int = Field(32, gt=0, description="events averaged into one detector input")
    warmup_blocks: int = Field(30, ge=2, description="blocks that learn the reference")
    min_effect: float = Field(1.0, ge=0, description="smallest mean |z| that may alert")
    cooldown_blocks: int = Field(30, ge=0, description="blocks without alert after one")
    projections: int = Field(4, ge=0, description="random projections of embeddings")
    centroid_events: int = Field(1000, gt=0, description="embeddings that learn the centroid")
    seed: int = 0


class ActiveSettings(_Section):
    """Active learning: which interactions go to humans."""

    strategy: Literal["least_confidence", "margin", "entropy"] = "margin"
    threshold: float = Field(0.6, ge=0, le=1, description="smallest uncertainty to ask about")
    budget: int = Field(100, ge=0, description="label requests per task per window")
    window_s: float = Field(3600.0, gt=0, description="budget window")


class BufferSettings(_Section):
    """Replay buffer and micro-batches per task."""

    capacity: int = Field(2000, gt=0, description="reservoir size (examples)")
    max_new: int = Field(5000, gt=0, description="new examples kept between trainings")
    max_bytes: int = Field(4 * 1024 * 1024, gt=0, description="bound of the whole buffer")
    batch_size: int = Field(256, gt=0, description="examples per training request")
    replay_ratio: float = Field(0.3, ge=0, lt=1, description="share of replayed examples")
    balance: bool = True
    curriculum: bool = True
    batch_max_bytes: int = Field(1024 * 1024, gt=0, description="bound of one request's examples")
    seed: int = 0


class TriggerSettings(_Section):
    """When a task asks for training."""

    min_examples: int = Field(32, gt=0, description="new examples needed by any trigger")
    cooldown_s: float = Field(300.0, ge=0, description="time between two requests of a task")
    every_s: float | None = Field(None, gt=0, description="schedule: every T seconds")
    every_examples: int | None = Field(None, gt=0, description="schedule: every N examples")
    on_drift: bool = True
    metric_threshold: float | None = Field(0.7, ge=0, le=1, description="accuracy floor")
    metric_max_drop: float | None = Field(0.1, ge=0, le=1, description="drop from baseline")
    metric_min_outcomes: int = Field(100, gt=0, description="labels before the metric counts")
    challenge_min_score: float | None = Field(
        0.9, ge=0, le=1, description="challenge_score of a new version below this triggers")
    quality_window: int = Field(500, gt=0, description="outcomes in the rolling accuracy")


class ABTestSettings(_Section):
    """A/B promotion: the worker tests a canaried candidate against the head on live feedback.

    The test is Wald's SPRT on paired outcomes with Ville's thresholds
    (:mod:`driftloop.streams.sprt`): a candidate is promoted only with
    P(promote | not better) <= ``alpha`` under continuous monitoring, and rejected early with
    P(reject | odds ratio >= ``odds_ratio``) <= ``beta``.
    """

    enabled: bool = Field(True, description="run A/B tests of candidate versions")
    alpha: float = Field(0.05, gt=0.0, lt=0.5,
                         description="bound on promoting a candidate that is not better")
    beta: float = Field(0.2, gt=0.0, lt=0.5,
                        description="bound on an early rejection of a candidate as good as "
                                    "odds_ratio")
    odds_ratio: float = Field(
        1.5, gt=1.0, le=100.0,
        description="the effect to detect: odds of a right answer, candidate over head "
                    "(0.80 -> 0.857 is 1.5)")
    min_samples: int = Field(20, ge=1, description="paired outcomes before any decision")
    max_samples: int = Field(2000, ge=1,
                             description="paired outcomes without a decision: the candidate "
                                         "is rejected")
    pair_window: int = Field(32, ge=1, le=10_000,
                             description="unpaired outcomes kept per domain, newest first")

    @model_validator(mode="after")
    def _check_samples(self) -> ABTestSettings:
        if self.max_samples < self.min_samples:
            raise ValueError(f"max_samples ({self.max_samples}) must be >= min_samples "
                             f"({self.min_samples})")
        return self


class WorkerSettings(_Section):
    """The Faust stream worker."""

    app_id: str = "driftloop-worker"
    web_port: int = Field(6066, gt=0, lt=65536)
    data_dir: Path = Field(default_factory=lambda: _data_home() / "worker")
    max_event_bytes: int = Field(
        1024 * 1024, gt=0, le=8 * 1024 * 1024,
        description="largest event (its JSON, alone or inside a batch) the worker accepts; "
                    "a larger one is a dead letter (too_large)")
    web_host: str = Field("127.0.0.1", description="interface of /metrics and /health")
    store: str = Field("memory://", description="Faust table store (memory:// or rocksdb://)")
    commit_interval_s: float = Field(1.0, gt=0, description="offset commit interval")
    session_timeout_s: float = Field(
        30.0, ge=6, description="consumer session: how long a dead worker keeps its partitions")
    stall_timeout_s: float = Field(
        60.0, gt=0, description="no progress with lag for this long: resume the partitions")
    gc_threshold: int = Field(
        100_000, ge=0,
        description="allocations between young-generation garbage collections (Python's "
                    "default is 700; 0 keeps it): the hot path allocates many short-lived "
                    "objects that reference counting frees anyway (`driftloop bench worker`)")
    join: JoinSettings = Field(default_factory=JoinSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    active: ActiveSettings = Field(default_factory=ActiveSettings)
    buffer: BufferSettings = Field(default_factory=BufferSettings)
    triggers: TriggerSettings = Field(default_factory=TriggerSettings)
    ab_test: ABTestSettings = Field(default_factory=ABTestSettings)


class LearnerSettings(_Section):
    """The LoRA learner process."""

    group_id: str = "driftloop-learner"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int | None = Field(None, gt=0)
    cache_dir: Path = Field(default_factory=lambda: _data_home() / "learner")
    resident_models: int = Field(2, gt=0, description="base models kept in memory (LRU)")
    seed: int = Field(0, ge=0, description="fixed seed: a replayed request gives the same adapter")
    lora_r: int = Field(8, gt=0, description="LoRA rank")
    lora_alpha: int = Field(16, gt=0, description="LoRA scaling numerator (alpha / r)")
    lora_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout on the LoRA path")
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    batch_size: int = Field(8, gt=0)
    epochs: int = Field(1, gt=0)
    max_steps: int = Field(200, gt=0, description="step budget of one update")
    eval_every: int = Field(4, gt=0, description="steps between early-stop checks")
    patience: int = Field(3, gt=0, description="early-stop checks without improvement")
    l2_to_parent: float = Field(0.0, ge=0.0, description="L2 pull toward the parent's weights")
    holdout_fraction: float = Field(0.25, gt=0.0, lt=1.0,
                                    description="share of the request kept for the gate "
                                                "(chosen by a hash of each example's text)")
    gate_pool_size: int = Field(
        200, ge=0, le=100_000,
        description="held-out examples of earlier requests kept per task and domain; the "
                    "gate also scores on those of the request's domains (0: own holdout only)")
    gate_pool_max_bytes: int = Field(
        8 * 1024 * 1024, gt=0,
        description="most bytes of text in one task's gate pool (the oldest leave first)")
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0,
                                       description="share of the rest kept for early stop")
    max_length: int = Field(128, gt=8, description="token budget of one example")
    max_new_tokens: int = Field(8, gt=0, description="answer length when scoring generation")
    min_improvement: float = Field(0.0, ge=0.0, le=1.0,
                                   description="held-out score rise the gate demands")
    replay_tolerance: float = Field(0.02, ge=0.0, le=1.0,
                                    description="replay score drop the gate accepts")
    challenge_tolerance: float = Field(0.02, ge=0.0, le=1.0,
                                       description="challenge score drop the gate accepts")
    prompt_stability_probes: int = Field(
        16, ge=0, description="newest challenge probes a generation candidate answers under "
                              "each paraphrase of its prompt template (0: no stability check)")
    min_prompt_stability: float | None = Field(
        None, ge=0.0, le=1.0,
        description="gate: least share of probes answered the same under every paraphrase "
                    "(None: measured and recorded, not required)")
    promotion: Literal["gate", "canary"] = Field(
        "gate", description="what a version that passes the gate becomes: 'gate' = promoted "
                            "at once; 'canary' = a candidate, canaried by serving and promoted "
                            "by the worker's A/B test on live feedback")
    max_poll_interval_ms: int = Field(
        1_800_000, gt=0, description="longest gap between polls (one update) before a rebalance")
    site: str | None = Field(
        None, min_length=1, max_length=256,
        description="federated learning: this learner's site name; when set, every promoted "
                    "adapter is offered on site-adapters (a reference and a count, no examples)")
    federation_topic_prefix: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._\-]*$",
        description="topic prefix of the federation's shared site-adapters topic "
                    "(None: this deployment's kafka.topic_prefix)")


class ServingSettings(_Section):
    """The serving side: the adapter subscriber and the reference service (``driftloop serve``)."""

    host: str = Field("127.0.0.1", description="interface the HTTP service listens on")
    port: int = Field(8080, gt=0, lt=65536, description="port of /predict, /feedback, /metrics")
    replica_id: str | None = Field(
        None, min_length=1, max_length=256,
        description="name of this replica in acknowledgements; None = <hostname>-<pid>")
    tasks: tuple[str, ...] = Field(
        (), description="tasks this replica serves; empty = every task on model-versions")
    keep_versions: int = Field(
        3, gt=0, description="adapters kept loaded per task (the serving one + instant rollbacks)")
    canary_fraction: float = Field(
        0.0, ge=0.0, le=1.0,
        description="share of requests answered by the newest candidate version (0 = off)")
    cache_dir: Path = Field(default_factory=lambda: _data_home() / "serving",
                            description="local copies of verified adapters")
    torch_threads: int | None = Field(None, gt=0)
    max_inputs: int = Field(64, gt=0, description="texts accepted in one /predict request")
    max_request_bytes: int = Field(
        4 * 1024 * 1024, ge=1024,
        description="largest HTTP request body (a larger one gets 413 before it is read)")
    max_batch: int = Field(
        32, gt=0, description="texts in one forward pass (waiting requests are batched)")
    batch_max_events: int = Field(
        256, gt=0, description="interactions or feedback carried by one batch envelope")
    batch_linger_ms: float = Field(
        5.0, ge=0.0, description="wait for more events before sending a batch (under load)")
    poll_wait_ms: int = Field(
        100, gt=0, description="longest broker wait of the subscriber's fetch (bounds swap delay)")


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
    tasks: dict[str, TaskSettings] = Field(default_factory=dict)

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
        return Settings(**overrides)
    finally:
        _CONFIG_FILE["path"] = None
