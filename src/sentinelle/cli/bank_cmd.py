"""`sentinelle bank ...`: create banks, import/export hash lists, edit entries.

Every command opens the database from ``$SENTINELLE_DATABASE_URL`` (default: a
SQLite file ``./sentinelle.db``). Every change is written to the audit trail
with actor ``cli`` (see :class:`sentinelle.banks.BankStore`). Errors print
``error [code]: message`` on stderr and exit with status 1 (2 for bad
command-line usage, from Typer).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import BankImportError, SentinelleError
from ..formats import FORMATS
from ._common import db_engine, err_console, fail

FORMAT_HELP = "One of: " + ", ".join(FORMATS)


@contextmanager
def _errors() -> Iterator[None]:
    """Like :func:`._common.handle_errors`, but a rejected import also lists its bad lines."""
    try:
        yield
    except BankImportError as e:
        con = err_console()
        con.print(f"[red]error \\[{e.code}][/]: import rejected, nothing was written")
        head = e.message.split(": ", 1)[0]
        con.print(f"  {head}", markup=False)
        for le in e.errors[:200]:
            con.print(f"  line {le.line}: {le.message}", markup=False)
        if len(e.errors) > 200:
            con.print(f"  ... and {len(e.errors) - 200} more")
        raise typer.Exit(1) from None
    except SentinelleError as e:
        raise fail(e) from None


CLI_ACTOR = "cli"  # the audit actor of every change made from the command line


def _store():  # type: ignore[no-untyped-def]
    from ..banks import BankStore

    return BankStore(db_engine())


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}. {FORMAT_HELP}", param_hint="--format")
    return fmt


def _parse_until(value: str | None):  # type: ignore[no-untyped-def]
    if value is None:
        return None
    from ..formats.entry import parse_datetime

    try:
        return parse_datetime(value)
    except ValueError:
        raise typer.BadParameter(
            f"not an ISO-8601 date/time: {value!r} (e.g. 2026-12-31T00:00:00Z)",
            param_hint="--until",
        ) from None


def register(app: typer.Typer) -> None:
    bank = typer.Typer(
        name="bank",
        help="Manage hash banks: create, import, export, thresholds, entries.",
        no_args_is_help=True,
    )
    app.add_typer(bank, name="bank")

    @bank.command("create")
    def create(
        name: Annotated[str, typer.Argument(help="Bank name (unique).")],
        description: Annotated[str, typer.Option("--description", "-d")] = "",
        pdq_threshold: Annotated[
            int | None,
            typer.Option(
                "--pdq-threshold", min=0, max=256, help="Max PDQ Hamming distance (default 31)."
            ),
        ] = None,
    ) -> None:
        """Create an empty bank."""
        with _errors():
            th = {"pdq": pdq_threshold} if pdq_threshold is not None else None
            info = _store().create_bank(name, description, thresholds=th, actor=CLI_ACTOR)
            typer.echo(f"created bank {info.name!r} (id {info.id})")

    @bank.command("list")
    def list_() -> None:
        """List banks with entry counts per signal type."""
        with _errors():
            banks = _store().list_banks()
            table = Table(title="Banks")
            for col in ("id", "name", "enabled", "entries", "by signal", "pdq thr", "description"):
                table.add_column(col)
            for b in banks:
                table.add_row(
                    str(b.id),
                    escape(b.name),  # bank names come from API callers and partners
                    "yes" if b.enabled else "no",
                    str(b.total),
                    ", ".join(f"{k}: {v}" for k, v in sorted(b.counts.items())) or "-",
                    str(b.thresholds.get("pdq")),
                    escape(b.description or ""),
                )
            Console(highlight=False).print(table)

    @bank.command("show")
    def show(name: Annotated[str, typer.Argument()]) -> None:
        """Show one bank: state, thresholds, counts."""
        with _errors():
            b = _store().get_bank(name)
            con = Console(highlight=False)
            con.print(f"[bold]{escape(b.name)}[/] (id {b.id})", markup=True)
            con.print(f"description: {b.description or '-'}", markup=False)
            con.print(f"enabled: {'yes' if b.enabled else 'no'}")
            con.print(f"created: {b.created_at.isoformat()}")
            con.print(
                "thresholds: " + ", ".join(f"{k}={v}" for k, v in sorted(b.thresholds.items()))
            )
            con.print(f"entries: {b.total}")
            for k, v in sorted(b.counts.items()):
                con.print(f"  {k}: {v}")

    @bank.command("import")
    def import_(
        name: Annotated[str, typer.Argument(help="Bank to import into.")],
        file: Annotated[Path, typer.Argument(help="File to import ('-' for stdin).")],
        fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "csv",
    ) -> None:
        """Import a hash list. All-or-nothing: any bad line rejects the whole file."""
        _check_format(fmt)
        with _errors():
            store = _store()
            con = err_console()
            with con.status(f"importing {file} ({fmt}) into {name}..."):
                if str(file) == "-":
                    report = store.import_file(name, sys.stdin.buffer, fmt, actor=CLI_ACTOR)
                else:
                    report = store.import_file(name, file, fmt, actor=CLI_ACTOR)
            typer.echo(
                f"imported into {name!r}: {report.added} added, {report.duplicates} duplicates, "
                f"{report.skipped_tombstoned} skipped (deleted before), {report.total} total"
                + (f"; {report.ignored} unsupported hashes ignored" if report.ignored else "")
            )

    @bank.command("export")
    def export(
        name: Annotated[str, typer.Argument()],
        fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "csv",
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Output file (default: stdout).")
        ] = None,
    ) -> None:
        """Export a bank (all entries, including disabled ones)."""
        _check_format(fmt)
        with _errors():
            store = _store()
            store.get_bank(name)
            if out is None:
                n = store.export(name, fmt, sys.stdout)
                sys.stdout.flush()
            else:
                tmp = out.with_name(out.name + ".tmp")
                try:
                    with open(tmp, "wb") as f:
                        n = store.export(name, fmt, f)
                    tmp.replace(out)  # never leave a partial export behind
                except OSError as e:
                    tmp.unlink(missing_ok=True)
                    raise SentinelleError(f"cannot write {out}: {e.strerror}", "io_error") from None
            err_console().print(f"exported {n} entries from {escape(repr(name))} as {fmt}")

    @bank.command("delete")
    def delete(
        name: Annotated[str, typer.Argument()],
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    ) -> None:
        """Delete a bank and all its entries."""
        with _errors():
            store = _store()
            b = store.get_bank(name)
            if not yes and sys.stdin.isatty():
                typer.confirm(f"delete bank {name!r} and its {b.total} entries?", abort=True)
            store.delete_bank(name, actor=CLI_ACTOR)
            typer.echo(f"deleted bank {name!r}")

    @bank.command("entry-delete")
    def entry_delete(
        entry_id: Annotated[int, typer.Argument(help="Entry id.")],
        reason: Annotated[str, typer.Option("--reason")] = "",
    ) -> None:
        """Delete an entry; its hash is tombstoned so re-imports skip it."""
        with _errors():
            _store().delete_entry(entry_id, reason=reason, actor=CLI_ACTOR)
            typer.echo(f"deleted entry {entry_id}")

    @bank.command("entry-disable")
    def entry_disable(
        entry_id: Annotated[int, typer.Argument()],
        until: Annotated[
            str | None, typer.Option("--until", help="ISO-8601; re-enabled after it.")
        ] = None,
    ) -> None:
        """Disable an entry (indefinitely, or until a date)."""
        when = _parse_until(until)
        with _errors():
            _store().disable_entry(entry_id, until=when, actor=CLI_ACTOR)
            typer.echo(
                f"disabled entry {entry_id}" + (f" until {when.isoformat()}" if when else "")
            )

    @bank.command("entry-enable")
    def entry_enable(entry_id: Annotated[int, typer.Argument()]) -> None:
        """Re-enable an entry."""
        with _errors():
            _store().enable_entry(entry_id, actor=CLI_ACTOR)
            typer.echo(f"enabled entry {entry_id}")

    @bank.command("threshold")
    def threshold(
        name: Annotated[str, typer.Argument()],
        signal: Annotated[str, typer.Argument(help="pdq, vpdq (md5/sha1/sha256: only 0).")],
        max_distance: Annotated[int, typer.Argument(help="Max Hamming distance (bits).")],
    ) -> None:
        """Set a bank's match threshold for one signal type."""
        with _errors():
            _store().set_threshold(name, signal, max_distance, actor=CLI_ACTOR)
            typer.echo(f"{name}: {signal} threshold = {max_distance}")

    @bank.command("add-media")
    def add_media(
        name: Annotated[str, typer.Argument()],
        paths: Annotated[list[Path], typer.Argument(help="Images/videos or folders (recursive).")],
        augment: Annotated[
            bool, typer.Option("--augment", help="Also enroll central-crop PDQ hashes.")
        ] = False,
        category: Annotated[str | None, typer.Option("--category")] = None,
        source_org: Annotated[str | None, typer.Option("--source-org")] = None,
        note: Annotated[str | None, typer.Option("--note")] = None,
    ) -> None:
        """Enroll media: MD5 + SHA-256, PDQ (images) or vPDQ frame hashes (videos)."""
        from ..formats.enroll import entries_from_paths
        from ..scan.walker import walk

        with _errors():
            store = _store()
            store.get_bank(name)
            con = err_console()
            files = []
            failed = 0
            for ref in walk(paths):
                if ref.error is not None:
                    con.print(f"skipped {ref.path}: {ref.error[0]}: {ref.error[1]}", markup=False)
                    failed += 1
                else:
                    files.append(ref.path)
            with con.status(f"hashing {len(files)} file(s)..."):
                entries, errs = entries_from_paths(
                    files, augment=augment, category=category, source_org=source_org, note=note
                )
            for path, err in errs:
                con.print(f"could not enroll {path}: {err.code}: {err.message}", markup=False)
            failed += len(errs)
            report = store.add_entries(name, entries, actor=CLI_ACTOR) if entries else None
            enrolled = len(files) - len(errs)
            typer.echo(
                f"enrolled {enrolled} file(s) into {name!r}: "
                f"{report.added if report else 0} entries added, "
                f"{report.duplicates if report else 0} already present, "
                f"{report.skipped_tombstoned if report else 0} tombstoned; {failed} failed"
            )
            if enrolled == 0:
                raise typer.Exit(1)
