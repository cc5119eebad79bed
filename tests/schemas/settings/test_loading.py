"""Settings and load_settings: TOML file, DRIFTLOOP_* variables, validation at start, secrets
masked (``schemas/settings/loading.py``); the Kafka section's own checks are in test_kafka.py."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from settings_helpers import SASL_TOML, SECRET, clean_environment, write_toml  # noqa: F401

from driftloop.schemas import SettingsError, Topic
from driftloop.schemas.settings import CONFIG_ENV, Settings, load_settings
from driftloop.tools.cli import cli, main


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
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "--json"],
                                env={"DRIFTLOOP_KAFKA__CLIENT_ID": "from-env"})
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.output)
    assert shown["kafka"]["sasl_password"] == "**********"
    assert shown["kafka"]["client_id"] == "from-env"
    assert SECRET not in result.output


def test_the_config_commands_text_is_toml_that_loads_back_to_the_same_settings(
        tmp_path: Path) -> None:
    path = write_toml(tmp_path / "a.toml", '[kafka]\ntopic_prefix = "t."\n'
                                           '[learner.base_model_paths]\n"org/m" = "/m"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "config"])
    assert result.exit_code == 0, result.output
    assert 'kafka.topic_prefix = "t."' in result.output.splitlines()
    again = write_toml(tmp_path / "again.toml", result.output)
    assert load_settings(again).safe_dict() == load_settings(path).safe_dict()


def test_building_settings_directly_raises_settings_error_too() -> None:
    with pytest.raises(SettingsError, match=r"kafka\.bootstrap_servers: .*expected host:port"):
        Settings(kafka={"bootstrap_servers": "localhost"})


def test_secrets_from_the_environment_are_masked_in_the_config_command() -> None:
    env = {"DRIFTLOOP_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
           "DRIFTLOOP_KAFKA__SASL_MECHANISM": "PLAIN", "DRIFTLOOP_KAFKA__SASL_USERNAME": "svc",
           "DRIFTLOOP_KAFKA__SASL_PASSWORD": SECRET}
    result = CliRunner().invoke(cli, ["config", "--json"], env=env)
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


def test_the_signing_key_comes_from_the_environment_and_never_shows(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DRIFTLOOP_TRUST__SIGNING_KEY", "sixteen-or-more-chars-secret")
    settings = load_settings(None)
    assert settings.trust.signing_key.get_secret_value() == "sixteen-or-more-chars-secret"
    assert "sixteen-or-more" not in repr(settings) + str(settings.safe_dict())
    logging.getLogger("driftloop.test").warning("key is sixteen-or-more-chars-secret")
    assert "sixteen-or-more" not in caplog.text
