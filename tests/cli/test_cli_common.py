"""The shared CLI error contract: ``error [code]: message`` on stderr, exit status 1."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from sentinelle.cli._common import fail, handle_errors, parse_when
from sentinelle.errors import SentinelleError


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command("ctx")
    def ctx(message: str) -> None:
        with handle_errors():
            raise SentinelleError(message, "bad_thing")

    @app.command("raise")
    def raise_(message: str) -> None:
        try:
            raise SentinelleError(message, "other_thing")
        except SentinelleError as e:
            raise fail(e) from None

    @app.command("when")
    def when(text: str) -> None:
        typer.echo(parse_when(text).isoformat())

    return app


def test_handle_errors_prints_code_and_escaped_message_and_exits_1() -> None:
    r = CliRunner().invoke(_app(), ["ctx", "no [bold]markup[/] here"])
    assert r.exit_code == 1
    assert "error [bad_thing]: no [bold]markup[/] here" in r.stderr
    assert r.stdout == ""


def test_fail_gives_the_same_line() -> None:
    r = CliRunner().invoke(_app(), ["raise", "boom"])
    assert r.exit_code == 1
    assert "error [other_thing]: boom" in r.stderr


def test_parse_when_naive_is_utc_and_garbage_is_a_usage_error() -> None:
    r = CliRunner().invoke(_app(), ["when", "2026-01-02T03:04:05"])
    assert r.exit_code == 0
    assert r.stdout.strip() == "2026-01-02T03:04:05+00:00"
    r = CliRunner().invoke(_app(), ["when", "yesterday"])
    assert r.exit_code == 2
    assert "not an ISO 8601 time" in r.stderr
