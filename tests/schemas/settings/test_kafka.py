"""KafkaSettings (``schemas/settings/kafka.py``): SASL and SSL checks, client keyword
arguments, the SSL context, the environment of a child process."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from settings_helpers import SASL_TOML, SECRET, clean_environment, write_toml  # noqa: F401

from driftloop.schemas import SettingsError
from driftloop.schemas.settings import Settings, load_settings


@pytest.mark.parametrize("missing", ["sasl_password", "sasl_username", "sasl_mechanism"])
def test_sasl_without_its_credentials_is_an_error(tmp_path: Path, missing: str) -> None:
    text = "\n".join(line for line in SASL_TOML.splitlines()
                     if not line.startswith(f"{missing} "))
    with pytest.raises(SettingsError) as caught:
        load_settings(write_toml(tmp_path / "a.toml", text))
    assert "kafka" in str(caught.value) and missing in str(caught.value)


def test_client_kwargs_carry_sasl_options(tmp_path: Path) -> None:
    kwargs = load_settings(write_toml(tmp_path / "a.toml", SASL_TOML)).kafka.client_kwargs()
    assert kwargs == {
        "bootstrap_servers": "toml-host:9092", "client_id": "driftloop",
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc", "sasl_plain_password": SECRET,
    }


def test_client_kwargs_of_plaintext_have_no_security_options() -> None:
    kwargs = load_settings().kafka.client_kwargs()
    assert set(kwargs) == {"bootstrap_servers", "client_id", "security_protocol"}


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key (encrypted with SECRET), made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
                    "-passout", f"pass:{SECRET}"], check=True, capture_output=True)
    return cert, key


def test_client_kwargs_carry_an_ssl_context_built_from_the_files(
        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    settings = load_settings(kafka={
        "security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "svc",
        "sasl_password": SECRET, "ssl_cafile": str(cert), "ssl_certfile": str(cert),
        "ssl_keyfile": str(key), "ssl_password": SECRET})
    kwargs = settings.kafka.client_kwargs()
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert kwargs["sasl_plain_password"] == SECRET
    assert SECRET not in repr(settings)


def test_a_wrong_key_password_fails_when_the_context_is_built(
        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    settings = load_settings(kafka={"security_protocol": "SSL", "ssl_cafile": str(cert),
                                    "ssl_certfile": str(cert), "ssl_keyfile": str(key),
                                    "ssl_password": "wrong"})
    with pytest.raises(SettingsError, match="wrong ssl_password"):
        settings.kafka.client_kwargs()


def test_a_file_that_is_no_certificate_fails_naming_the_setting(tmp_path: Path) -> None:
    junk = write_toml(tmp_path / "junk.pem", "not a certificate")
    settings = load_settings(kafka={"security_protocol": "SSL", "ssl_cafile": str(junk)})
    with pytest.raises(SettingsError, match=r"kafka\.ssl_cafile"):
        settings.kafka.ssl_context()


@pytest.mark.parametrize("name", ["ssl_cafile", "ssl_certfile", "ssl_keyfile"])
def test_ssl_files_that_do_not_exist_fail_at_start(tmp_path: Path, name: str) -> None:
    kafka = {"security_protocol": "SSL", name: str(tmp_path / "missing.pem")}
    if name == "ssl_keyfile":
        kafka["ssl_certfile"] = str(write_toml(tmp_path / "cert.pem", ""))
    with pytest.raises(SettingsError, match=rf"kafka: .*{name}: .*missing\.pem does not exist"):
        load_settings(kafka=kafka)


def test_child_env_gives_a_child_the_same_kafka_settings(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    kafka = Settings(kafka={"bootstrap_servers": "b:9094", "topic_prefix": "p.",
                            "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                            "sasl_username": "u", "sasl_password": "pw-child",
                            "ssl_cafile": str(ca)}).kafka
    for name, value in kafka.child_env().items():
        monkeypatch.setenv(name, value)
    assert Settings().kafka == kafka
