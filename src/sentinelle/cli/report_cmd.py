"""`sentinelle report ...`: CyberTipline report drafts, validation, submission and upkeep.

Configuration (environment): ``SENTINELLE_CYBERTIP_ENV`` (``test`` by default;
``production`` only explicitly), ``SENTINELLE_CYBERTIP_USERNAME`` /
``SENTINELLE_CYBERTIP_PASSWORD`` (or ``_PASSWORD_FILE``), ``SENTINELLE_CYBERTIP_URL``
(override, e.g. a local test server), ``SENTINELLE_CYBERTIP_XSD`` (a local schema
file; otherwise the API's ``/xsd`` is fetched and cached), ``SENTINELLE_REPORTER_EMAIL``
(the reporting person, for drafts). Run ``sentinelle report tick`` every few minutes
(cron, systemd timer): it finishes complete reports and retracts those about to expire.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import SentinelleError
from ._common import db_engine, err_console, print_error, print_json

ACTOR = "cli"


def _fail(e: SentinelleError) -> typer.Exit:
    """Like :func:`._common.fail`, plus the first issues of a rejected report, if any."""
    print_error(e)
    issues = getattr(e, "issues", None)
    for issue in (issues or [])[:20]:
        err_console().print(f"  line {issue.get('line')}: {escape(str(issue.get('message')))}")
    return typer.Exit(1)


def _manager(files: list[Path] | None = None, *, need_client: bool = True):  # type: ignore[no-untyped-def]
    """A ReportManager wired from the environment (database, API client, schema)."""
    from ..reports.client import CyberTipConfig, CyberTiplineClient
    from ..reports.lifecycle import ReportManager
    from ..reports.xsd import default_cache_path, load_schema, load_schema_cached

    engine = db_engine()
    client = CyberTiplineClient(CyberTipConfig.from_env()) if need_client else None
    xsd = os.environ.get("SENTINELLE_CYBERTIP_XSD", "").strip()
    if xsd:
        schema = load_schema(xsd)
    elif client is not None:
        schema = load_schema_cached(client.xsd, default_cache_path(client.environment))
    else:
        schema = None
    by_sha: dict[str, Path] = {}
    for p in files or []:
        try:
            by_sha[hashlib.sha256(p.read_bytes()).hexdigest()] = p
        except OSError as e:
            raise SentinelleError(f"cannot read {p}: {e.strerror}", "missing_file") from None
    manager = ReportManager(engine, client, schema=schema, actor=ACTOR)
    evidence = manager.loader

    def loader(f):  # type: ignore[no-untyped-def]
        p = by_sha.get(f.sha256)
        return p.read_bytes() if p is not None else evidence(f)

    manager.loader = loader
    return manager


FilesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--file",
        "-f",
        help="A reported file as received (matched to the report by SHA-256); repeatable. "
        "Without it, bytes come from the encrypted evidence store.",
    ),
]


def register(app: typer.Typer) -> None:
    report = typer.Typer(
        name="report",
        help="CyberTipline reports: draft, validate, submit, track, retract "
        "(docs/CYBERTIPLINE.md).",
        no_args_is_help=True,
    )
    app.add_typer(report)

    @report.command("draft")
    def draft(
        case_id: Annotated[int, typer.Argument(help="Review case id.")],
        platform: Annotated[str | None, typer.Option(help="Product name (platform).")] = None,
    ) -> None:
        """Draft a report from the confirmed items of a case; prints the report id."""
        from ..reports.drafts import create_draft

        try:
            rid = create_draft(db_engine(), case_id, platform=platform, actor=ACTOR)
        except SentinelleError as e:
            raise _fail(e) from None
        typer.echo(rid)

    @report.command("validate")
    def validate_(
        report_id: int,
        as_json: Annotated[bool, typer.Option("--json", help="Issues as JSON.")] = False,
    ) -> None:
        """Validate a draft against the XSD (exit 1 with every problem when invalid)."""
        try:
            m = _manager(need_client=not os.environ.get("SENTINELLE_CYBERTIP_XSD"))
            issues = m.validate(report_id)
        except SentinelleError as e:
            raise _fail(e) from None
        if as_json:
            print_json({"valid": not issues, "issues": [i.to_dict() for i in issues]})
        elif not issues:
            err_console().print(f"report {report_id}: valid")
        for i in issues if not as_json else []:
            err_console().print(f"[red]{escape(str(i))}[/] {escape(i.path)}")
        if issues:
            raise typer.Exit(1)

    @report.command("submit")
    def submit(report_id: int, files: FilesOpt = None) -> None:
        """Submit a validated report, upload its files, send their details and finish."""
        try:
            m = _manager(files)
            state = m.run(report_id)
        except SentinelleError as e:
            raise _fail(e) from None
        info = m.get(report_id)
        ncmec_id = escape(str(info["ncmec_report_id"]))
        err_console().print(f"report {report_id}: {state} (NCMEC report {ncmec_id})")

    @report.command("status")
    def status(report_id: int) -> None:
        """A report's state, files, API journal and receipt (JSON)."""
        try:
            print_json(_manager(need_client=False).get(report_id))
        except SentinelleError as e:
            raise _fail(e) from None

    @report.command("list")
    def list_(
        state: Annotated[list[str] | None, typer.Option("--state", help="Repeatable.")] = None,
    ) -> None:
        """Reports (JSON lines)."""
        try:
            for row in _manager(need_client=False).list(state):
                typer.echo(json.dumps(row, sort_keys=True, default=str))
        except SentinelleError as e:
            raise _fail(e) from None

    @report.command("xml")
    def xml(report_id: int) -> None:
        """Print the report XML exactly as it is (or was) sent."""
        try:
            typer.echo(_manager(need_client=False).xml(report_id).decode())
        except SentinelleError as e:
            raise _fail(e) from None

    @report.command("retract")
    def retract(
        report_id: int,
        reason: Annotated[str, typer.Option(help="Recorded with the retraction.")] = "manual",
    ) -> None:
        """Retract an open (unfinished) report at NCMEC."""
        try:
            _manager().retract(report_id, reason=reason)
        except SentinelleError as e:
            raise _fail(e) from None
        err_console().print(f"report {report_id}: retracted")

    @report.command("resolve")
    def resolve(
        report_id: int,
        ncmec_id: Annotated[
            int | None, typer.Option(help="The reportId NCMEC did open (found out of band).")
        ] = None,
        not_received: Annotated[
            bool, typer.Option("--not-received", help="NCMEC confirmed it never got it.")
        ] = False,
    ) -> None:
        """Settle a report whose submit answer was lost (state submit_unknown)."""
        if (ncmec_id is None) == (not not_received):
            raise _fail(SentinelleError("give exactly one of --ncmec-id / --not-received", "usage"))
        try:
            state = _manager(need_client=False).resolve_unknown(report_id, ncmec_report_id=ncmec_id)
        except SentinelleError as e:
            raise _fail(e) from None
        err_console().print(f"report {report_id}: {state}")

    @report.command("resubmit")
    def resubmit(report_id: int) -> None:
        """New draft with the content of a retracted or expired report; prints its id."""
        try:
            typer.echo(_manager(need_client=False).resubmit(report_id))
        except SentinelleError as e:
            raise _fail(e) from None

    @report.command("tick")
    def tick(files: FilesOpt = None) -> None:
        """Drive open reports: finish complete ones, retract those about to expire (JSON)."""
        try:
            result = _manager(files).tick()
        except SentinelleError as e:
            raise _fail(e) from None
        print_json(result.to_dict())

    @report.command("ping")
    def ping() -> None:
        """Check connectivity and credentials (GET /status)."""
        from ..reports.client import CyberTipConfig, CyberTiplineClient

        try:
            cfg = CyberTipConfig.from_env()
            with CyberTiplineClient(cfg) as c:
                resp = c.status()
        except SentinelleError as e:
            raise _fail(e) from None
        err_console().print(
            f"{cfg.environment} ({cfg.base_url}): {escape(resp.description or 'ok')}"
        )
