"""How every Kafka client (Faust, aiokafka) reaches the broker: servers, prefix, security.

The one section every process reads: the worker, the learner, serving and the tools must
agree on the broker, the topic names and the credentials. Secrets are
:class:`pydantic.SecretStr`, registered for redaction from the moment they are read.

Examples
--------
>>> kafka = KafkaSettings(bootstrap_servers="b1:9092,b2:9092", topic_prefix="dev.")
>>> kafka.topic("feedback"), kafka.client_kwargs()["security_protocol"]
('dev.feedback', 'PLAINTEXT')
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ..errors import SettingsError
from ..redact import register_secret
from ..topics import Topic, topic_name
from .section import Section

__all__ = ["KafkaSettings"]


class KafkaSettings(Section):
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
