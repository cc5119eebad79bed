"""Settings: TOML file, DRIFTLOOP_* variables, validation at start, secrets masked."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from driftloop.schemas import SettingsError, Topic
from driftloop.schemas.settings import CONFIG_ENV, Settings, load_settings
from driftloop.tools.cli import cli, main

SECRET = "hunter2-very-secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's own DRIFTLOOP_* variables or ./driftloop.toml must not leak in.
    for name in list(os.environ):
        if name.startswith("DRIFTLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


SASL_TOML = f"""
[kafka]
bootstrap_servers = "toml-host:9092"
topic_prefix = "toml."
security_protocol = "SASL_PLAINTEXT"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "svc"
sasl_password = "{SECRET}"
"""


def test_defaults_need_no_file(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.topic(Topic.FEEDBACK) == "feedback"


def test_the_toml_file_is_read(tmp_path: Path) -> None:
    settings = load_settings(write_toml(tmp_path / "a.toml", SASL_TOML))
    assert settings.kafka.bootstrap_servers == "toml-host:9092"
    assert settings.kafka.topic(Topic.MODEL_VERSIONS) == "toml.model-versions"
    assert settings.kafka.sasl_password.get_secret_value() == SECRET


def test_env_beats_toml_and_arguments_beat_env(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path / "a.toml", SASL_TOML)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS", "env-host:9093")
    settings = load_settings(path)
    assert settings.kafka.bootstrap_servers == "env-host:9093"  # env over the file
    assert settings.kafka.topic_prefix == "toml."  # the rest of the section still from the file
    assert settings.kafka.sasl_username == "svc"
    overridden = load_settings(path, kafka={"bootstrap_servers": "arg-host:1",
                                            "topic_prefix": "arg."})
    assert overridden.kafka.bootstrap_servers == "arg-host:1"
    assert overridden.kafka.topic_prefix == "arg."


def test_nested_env_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS", "a:1,b:2")
    monkeypatch.setenv("DRIFTLOOP_WORKER__WEB_PORT", "7070")
    monkeypatch.setenv("DRIFTLOOP_TASKS__SENTIMENT__EMBEDDING_DIM", "384")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "a:1,b:2"
    assert settings.worker.web_port == 7070
    assert settings.task("sentiment").embedding_dim == 384
    assert settings.task("unknown").embedding_dim is None


def test_the_config_file_can_come_from_the_environment(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(write_toml(tmp_path / "env.toml", SASL_TOML)))
    assert load_settings().kafka.topic_prefix == "toml."


def test_driftloop_toml_in_the_working_directory_is_used(tmp_path: Path) -> None:
    write_toml(tmp_path / "driftloop.toml", '[kafka]\ntopic_prefix = "cwd."\n')
    assert load_settings().kafka.topic_prefix == "cwd."


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_missing_named_config_file_is_an_error(tmp_path: Path, how: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match=r"nope\.toml does not exist"):
        if how == "argument":
            load_settings(missing)
        else:
            monkeypatch.setenv(CONFIG_ENV, str(missing))
            load_settings()


@pytest.mark.parametrize(("source", "field"), [
    ({"DRIFTLOOP_WORKER__WEB_PORT": "70000"}, "worker.web_port"),
    ({"DRIFTLOOP_WORKER__WEB_PORT": "eighty"}, "worker.web_port"),
    ({"DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": "no-port"}, "kafka.bootstrap_servers"),
    ({"DRIFTLOOP_KAFKA__SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol"),
    ({"DRIFTLOOP_KAFKA__TOPIC_PREFIX": "bad prefix/"}, "kafka.topic_prefix"),
    ({"DRIFTLOOP_LEARNER__DEVICE": "tpu"}, "learner.device"),
    ("[kafka]\nbootstrap_servers = 9092\n", "kafka.bootstrap_servers"),
    ("[kafka]\nbootstrap_servrs = 'a:1'\n", "kafka.bootstrap_servrs"),
    ("[artifacts]\nmax_artifact_bytes = -1\n", "artifacts.max_artifact_bytes"),
    ("[tasks.sentiment]\nembedding_dim = 0\n", "tasks.sentiment.embedding_dim"),
])
def test_invalid_values_name_the_field(source: dict | str, field: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = None
    if isinstance(source, str):
        config = write_toml(tmp_path / "bad.toml", source)
    else:
        for name, value in source.items():
            monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert f"{field}:" in str(caught.value)


def test_toml_syntax_errors_are_settings_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="invalid settings"):
        load_settings(write_toml(tmp_path / "bad.toml", "[kafka\nx = 1\n"))


@pytest.mark.parametrize("missing", ["sasl_password", "sasl_username", "sasl_mechanism"])
def test_sasl_without_its_credentials_is_an_error(tmp_path: Path, missing: str) -> None:
    text = "\n".join(line for line in SASL_TOML.splitlines()
                     if not line.startswith(f"{missing} "))
    with pytest.raises(SettingsError) as caught:
        load_settings(write_toml(tmp_path / "a.toml", text))
    assert "kafka" in str(caught.value) and missing in str(caught.value)


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(Exception, match="frozen"):
        settings.kafka = None  # type: ignore[misc]
    with pytest.raises(Exception, match="frozen"):
        settings.kafka.topic_prefix = "x"  # type: ignore[misc]


def test_secrets_are_masked_everywhere_they_are_printed(tmp_path: Path) -> None:
    settings = load_settings(write_toml(tmp_path / "a.toml", SASL_TOML),
                             kafka={"ssl_password": SECRET})
    for shown in (repr(settings), str(settings), str(settings.kafka), repr(settings.kafka),
                  orjson.dumps(settings.safe_dict()).decode()):
        assert SECRET not in shown
    assert settings.safe_dict()["kafka"]["sasl_password"] == "**********"


def test_the_config_command_masks_secrets(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "a.toml", SASL_TOML)
    result = CliRunner().invoke(cli, ["--config", str(path), "config"],
                                env={"DRIFTLOOP_KAFKA__CLIENT_ID": "from-env"})
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["kafka"]["client_id"] == "from-env"
    assert SECRET not in result.output


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


def test_building_settings_directly_raises_settings_error_too() -> None:
    with pytest.raises(SettingsError, match=r"kafka\.bootstrap_servers: .*expected host:port"):
        Settings(kafka={"bootstrap_servers": "localhost"})


def test_secrets_from_the_environment_are_masked_in_the_config_command() -> None:
    env = {"DRIFTLOOP_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
           "DRIFTLOOP_KAFKA__SASL_MECHANISM": "PLAIN", "DRIFTLOOP_KAFKA__SASL_USERNAME": "svc",
           "DRIFTLOOP_KAFKA__SASL_PASSWORD": SECRET}
    result = CliRunner().invoke(cli, ["config"], env=env)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert orjson.loads(result.output)["kafka"]["sasl_password"] == "**********"


def test_the_config_command_reports_invalid_settings_as_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_toml(tmp_path / "bad.toml", "[worker]\nweb_port = 0\n")
    with pytest.raises(SystemExit) as caught:
        main(["--config", str(path), "config"])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: invalid settings (from ") and "worker.web_port:" in err
    assert err.count("\n") == 1


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
