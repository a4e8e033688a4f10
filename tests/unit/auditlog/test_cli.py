"""The `auditlog` command line: help for everything, refusals that name the option, exit codes.

Run through Typer's CliRunner, in a temporary directory (the commands keep their state under ./var) and
with settings from the environment, as an operator runs them. Nothing here reaches Kafka or ClickHouse:
the refusals happen before any client is made (tests/conftest.py fails a test that makes one).
"""

from __future__ import annotations

import re
import time

import jwt
import pytest
import typer
from typer.testing import CliRunner

from auditlog.cli import app, main
from config.settings import get_settings
from query_api.security import WORKSPACE_ROLES

SECRET = "cli-test-secret-of-at-least-32-bytes!!"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _operator_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUDITLOG_API__JWT_SECRET", SECRET)
    monkeypatch.setenv("AUDITLOG_API__CURSOR_SECRET", SECRET)
    monkeypatch.setenv("AUDITLOG_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _said(text: str) -> str:
    """Rich's error box without its frame and line wrapping: the message as one line."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _commands(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))


COMMANDS = [path for path, _ in _commands()]


def test_every_command_there_was_is_still_there():
    for path in [("kafka", "start"), ("kafka", "stop"), ("kafka", "status"), ("migrate",), ("consume",),
                 ("serve",), ("up",), ("emit",), ("demo",), ("token",), ("spool", "status"), ("spool", "replay"),
                 ("dlq", "list"), ("dlq", "replay"), ("verify",), ("sequence",), ("export-log",)]:
        assert path in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_and_option_is_described_in_help(path):
    command = dict(_commands())[path]
    assert (command.help or "").strip(), f"auditlog {' '.join(path)} has no help text"
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert (param.help or "").strip(), f"auditlog {' '.join(path)} {param.opts[0]} has no help text"
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage: auditlog " + " ".join(path) in _said(result.stdout)


def test_the_ttl_help_states_its_units():
    text = _said(runner.invoke(app, ["token", "--help"]).stdout)
    for unit in ("s (seconds)", "m (minutes)", "h (hours)", "d (days)"):
        assert unit in text


@pytest.mark.parametrize(("ttl", "seconds"), [("1h", 3600), ("90s", 90), ("7d", 7 * 86400), ("43200", 43200)])
def test_a_token_lives_as_long_as_its_ttl_says(ttl, seconds):
    result = runner.invoke(app, ["token", "--workspace", "ws_1", "--role", "admin", "--ttl", ttl])
    assert result.exit_code == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"], issuer="auditlog")
    assert claims["exp"] - claims["iat"] == seconds
    assert claims["roles"] == {"ws_1": "admin"}
    assert abs(claims["iat"] - time.time()) < 60


def test_a_token_without_ttl_lasts_twelve_hours():
    result = runner.invoke(app, ["token", "--workspace", "ws_1"])
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"], issuer="auditlog")
    assert claims["exp"] - claims["iat"] == 12 * 3600 and claims["roles"] == {"ws_1": "owner"}


@pytest.mark.parametrize(("args", "option", "why"), [
    (["token", "--workspace", "ws_1", "--ttl", "-5"], "--ttl", "'-5' is not a duration"),
    (["token", "--workspace", "ws_1", "--ttl", "1hour"], "--ttl", "is not a duration: expected a number with a unit"),
    (["token", "--workspace", "ws_1", "--ttl", "0"], "--ttl", "must be more than 0"),
    (["token", "--workspace", "ws_1", "--ttl", "31d"], "--ttl", "31d is longer than the limit, 30d"),
    (["token", "--workspace", "ws_1", "--role", "viewer"], "--role", "'viewer' is not one of owner, admin, member"),
    (["token", "--workspace", "not a workspace"], "--workspace", "is not a workspace id"),
    (["emit", "--workspace", "ws_1", "--action", "MEMBER_ROLE_CHANGED", "--actor", "a@example.com",
      "--target-id", "usr_1", "--before", "notjson"], "--before",
     "not valid JSON (Expecting value at line 1 column 1)"),
    (["emit", "--workspace", "ws_1", "--action", "MEMBER_ROLE_CHANGED", "--actor", "a@example.com",
      "--target-id", "usr_1", "--after", "[1, 2]"], "--after", "expected a JSON object"),
    (["emit", "--workspace", "ws_1", "--action", "NOT_AN_ACTION", "--actor", "a@example.com",
      "--target-id", "usr_1"], "--action", "'NOT_AN_ACTION' is not in the action catalog"),
    (["emit", "--workspace", "ws_1", "--action", "MEMBER_ROLE_CHANGED", "--actor", "a@example.com",
      "--target-id", "usr_1", "--actor-kind", "robot"], "--actor-kind", "'robot' is not one of"),
    (["demo", "--count", "0"], "--count", "greater than or equal to 1"),
    (["demo", "--days", "-1"], "--days", "greater than or equal to 1"),
    (["demo", "--workspaces", " , "], "--workspaces", "name at least one workspace id"),
    (["demo", "--workspaces", "ws_a,bad ws"], "--workspaces", "'bad ws' is not a workspace id"),
    (["dlq", "list", "--limit", "0"], "--limit", "greater than or equal to 1"),
])
def test_a_bad_value_is_a_usage_error_naming_its_option(args, option, why):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    said = _said(result.stderr)
    assert f"Invalid value for '{option}'" in said and why in said, said
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["nope"], ["token"], ["kafka", "restart"], ["token", "--workspace"],
                                  ["emit", "--workspace", "ws_1"], ["token", "--workspace", "ws", "--tll", "1h"]])
def test_unknown_commands_and_missing_options_exit_2(args):
    assert runner.invoke(app, args).exit_code == 2


def test_a_runtime_failure_exits_1_with_the_reason_on_stderr(tmp_path):
    result = runner.invoke(app, ["verify", "--export", str(tmp_path / "missing.jsonl"), "--checkpoint",
                                 str(tmp_path / "cp.json"), "--key", str(tmp_path / "pub.pem")])
    assert result.exit_code == 1
    assert result.stderr.startswith("auditlog verify: FileNotFoundError:") and "Traceback" not in result.stderr


def test_verify_without_a_target_keeps_its_exit_1_and_says_what_it_needs():
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 1 and "needs --workspace, or --export" in result.stderr


def test_kafka_status_of_a_broker_that_does_not_run_keeps_its_exit_3():
    result = runner.invoke(app, ["kafka", "status"])
    assert (result.exit_code, result.stdout.strip()) == (3, "kafka: not running")


def test_main_returns_the_exit_code_for_the_console_script(capsys):
    assert main(["spool", "status"]) == 0
    assert capsys.readouterr().out.startswith("spooled events: 0")
    assert main(["token", "--workspace", "ws_1", "--role", "viewer"]) == 2
    assert main(["kafka", "status"]) == 3


def test_roles_offered_are_the_roles_the_api_knows():
    text = _said(runner.invoke(app, ["token", "--help"]).stdout)
    assert "|".join(WORKSPACE_ROLES) in text


def test_settings_that_refuse_to_start_are_a_runtime_failure_naming_the_variable(monkeypatch):
    monkeypatch.setenv("AUDITLOG_ENVIRONMENT", "production")
    monkeypatch.delenv("AUDITLOG_API__JWT_SECRET")
    result = runner.invoke(app, ["spool", "status"])
    assert result.exit_code == 1
    assert "AUDITLOG_API__JWT_SECRET must be set to a real secret" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_parquet_row_group_size_out_of_range_stops_the_start_naming_the_variable(monkeypatch):
    monkeypatch.setenv("AUDITLOG_API__EXPORT_PARQUET_ROW_GROUP_ROWS", "5")
    result = runner.invoke(app, ["spool", "status"])
    assert result.exit_code == 1
    assert "AUDITLOG_API__EXPORT_PARQUET_ROW_GROUP_ROWS must be between 1,000 and 10,000 rows, not 5" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
