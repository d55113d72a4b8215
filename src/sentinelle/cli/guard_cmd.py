"""`sentinelle guard`: check prompts and generated images from the command line.

::

    $ sentinelle guard prompt "a child eating cake"
    allow   a child eating cake
    $ sentinelle guard prompt --json "..."              # the PromptResult as JSON
    $ sentinelle guard prompt --file prompts.txt        # one JSON object per line
    $ sentinelle guard image out.png --prompt "..."     # output image guard
    $ sentinelle guard prompt --account acct-42 "..."   # also log a block (database)
    $ sentinelle guard explain "..."                    # which spans fired (or were refused), why
    $ sentinelle guard allow add --lang fr "pieds nus"  # deployment allow list (audited)
    $ sentinelle guard deny add --lang '*' "..."        # deployment deny list
    $ sentinelle guard allow list [--lang fr] [--json]
    $ sentinelle guard allow remove --lang fr "pieds nus"

**Exit status** of a single check documents the decision, so shell scripts can branch
on it: ``0`` allow, ``3`` review, ``4`` block; ``1`` an error (bad input, unreadable
file, database), ``2`` a wrong command line. ``--file`` always exits ``0`` when it
could read the file: each line's decision (or ``"error"``) is in its JSON object, and a
summary goes to stderr.

``--account`` logs blocks in the attempt log of the database
(``SENTINELLE_DATABASE_URL``) and escalates repeat offenders, exactly like the HTTP
API. Settings come from the environment (:mod:`sentinelle.guard.config`,
:mod:`sentinelle.guard.policy`).

**Phrase lists** (:mod:`sentinelle.guard.phrases`) live in the database. ``prompt`` and
``explain`` apply them when ``SENTINELLE_DATABASE_URL`` is set (``--no-phrases`` skips
them); ``allow``/``deny`` ``add``/``remove`` change them, audited as actor ``cli``, and
print the new list version that ``policy_id`` then carries (``;phrases=v<N>``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import SentinelleError
from ._common import db_engine, err_console, fail

EXIT_CODES = {"allow": 0, "review": 3, "block": 4}
_STYLE = {"allow": "green", "review": "yellow", "block": "bold red"}


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _prompt_guard(semantic: bool, phrases: bool = False):  # type: ignore[no-untyped-def]
    from ..guard import GuardPolicy, PromptGuard
    from ..guard.config import GuardConfig

    cfg = GuardConfig.from_env()
    lists = None
    if phrases and os.environ.get("SENTINELLE_DATABASE_URL"):
        from ..guard.phrases import load

        lists = load(db_engine())
    return PromptGuard(
        GuardPolicy.from_env(), semantic=semantic, max_chars=cfg.max_prompt_chars, phrases=lists
    )


def _attempt_log():  # type: ignore[no-untyped-def]
    from ..guard.attempts import AttemptLog

    return AttemptLog(db_engine())


def _report_block(rec: Any) -> None:
    if rec is None:
        return
    msg = f"block logged (attempt {rec.attempt_id}"
    if rec.account_id is not None:
        msg += f", {rec.blocks_in_window} in the window for this account"
    msg += ")"
    if rec.flagged:
        msg += "; [bold]account flagged for review[/]"
    err_console().print(msg)


def _print_prompt(d: dict[str, Any]) -> None:
    out = _out()
    dec = d["decision"]
    out.print(f"[{_STYLE[dec]}]{dec:<7}[/] {escape(d['text'][:200])}")
    cats = "  ".join(f"{k}={v:.2f}" for k, v in d["categories"].items() if v)
    out.print(f"  categories: {cats or 'none'}   language: {d['language'] or '?'}")
    for ev in d["evidence"]:
        out.print(
            f"  evidence: {escape(repr(ev.get('normalized')))} at {ev.get('span')} -> "
            f"{ev.get('category')} ({escape(str(ev.get('language') or '?'))}, "
            f"rule {escape(str(ev.get('rule')))})"
        )
    out.print(f"  policy: {d['policy_id']}")


_REASONS = {
    "script": "a look-alike reading of a word written in one script",
    "language": "a term of a language this prompt is not written in, without obfuscation",
    "word": "an ordinary word, written plainly, that only folds to the term",
}


def _print_explain(d: dict[str, Any], refused: list[dict[str, Any]]) -> None:
    out = _out()
    text = d["text"]
    dec = d["decision"]
    out.print(f"[{_STYLE[dec]}]{dec:<7}[/] {escape(text[:200])}")
    out.print(f"  language: {d['language'] or '?'}   policy: {d['policy_id']}")
    cats = "  ".join(f"{k}={v:.2f}" for k, v in d["categories"].items() if v)
    out.print(f"  categories: {cats or 'none'}")
    out.print("  fired:" if d["evidence"] else "  fired: nothing")
    for ev in d["evidence"]:
        a, b = ev["span"]
        out.print(
            f"    [{a}:{b}] {escape(repr(text[a:b]))} -> {escape(repr(ev['normalized']))} "
            f"{ev['category']} ({escape(str(ev.get('language') or 'any'))}), "
            f"rule {escape(str(ev['rule']))}"
        )
    if refused:
        out.print("  refused:")
    for ev in refused:
        a, b = ev["span"]
        why = ev["reason"]
        if why.startswith("allow:"):
            why_text = f"inside an allow phrase (list {why.split(':', 1)[1]})"
        else:
            why_text = _REASONS.get(why, why)
        out.print(
            f"    [{a}:{b}] {escape(repr(text[a:b]))} -> {escape(repr(ev['normalized']))} "
            f"{ev['category']} ({escape(str(ev.get('language') or 'any'))}): {escape(why_text)}"
        )


_LANG_OPT = typer.Option("--lang", "-l", help="Language code (en, fr, ...) or '*' for all.")


def _register_list(guard: typer.Typer, kind: str) -> None:
    """``guard allow|deny add|remove|list``."""
    sub = typer.Typer(
        name=kind,
        help=f"The deployment's {kind} list of phrases per language (database, audited).",
        no_args_is_help=True,
    )
    guard.add_typer(sub)

    @sub.command("add")
    def add_command(
        phrase: Annotated[str, typer.Argument(help="The phrase (stored normalised).")],
        lang: Annotated[str, _LANG_OPT],
        note: Annotated[str | None, typer.Option("--note", help="Why (kept with it).")] = None,
    ) -> None:
        """Add a phrase; prints the new list version."""
        from ..guard import phrases

        try:
            entry, version = phrases.add(
                db_engine(), kind=kind, language=lang, phrase=phrase, actor="cli", note=note
            )
        except SentinelleError as e:
            raise fail(e) from None
        _out().print(
            f"added {kind} {escape(f'[{entry.language}]')} {escape(entry.phrase)} "
            f"(version {version})"
        )

    @sub.command("remove")
    def remove_command(
        phrase: Annotated[str, typer.Argument(help="The phrase.")],
        lang: Annotated[str, _LANG_OPT],
    ) -> None:
        """Remove a phrase; prints the new list version."""
        from ..guard import phrases

        try:
            entry, version = phrases.remove(
                db_engine(), kind=kind, language=lang, phrase=phrase, actor="cli"
            )
        except SentinelleError as e:
            raise fail(e) from None
        _out().print(
            f"removed {kind} {escape(f'[{entry.language}]')} {escape(entry.phrase)} "
            f"(version {version})"
        )

    @sub.command("list")
    def list_command(
        lang: Annotated[
            str | None, typer.Option("--lang", "-l", help="Only this language.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """List the phrases and the current version."""
        from ..guard import phrases

        try:
            engine = db_engine()
            rows = phrases.list_entries(engine, kind=kind, language=lang)
            version = phrases.current_version(engine)
        except SentinelleError as e:
            raise fail(e) from None
        if as_json:
            print(
                json.dumps(
                    {"version": version, "phrases": [r.to_dict() for r in rows]},
                    ensure_ascii=False,
                )
            )
            return
        out = _out()
        out.print(f"{kind} list, version {version}: {len(rows)} phrase(s)")
        for r in rows:
            note = f"  -- {escape(r.note)}" if r.note else ""
            out.print(
                f"  {escape(f'[{r.language}]')} {escape(r.phrase)}  ({escape(r.created_by)}, "
                f"{r.created_at:%Y-%m-%d %H:%M}){note}"
            )


def _print_image(d: dict[str, Any]) -> None:
    out = _out()
    dec = d["decision"]
    m = d["media"]
    out.print(f"[{_STYLE[dec]}]{dec:<7}[/] {m['format']} {m['width']}x{m['height']}")
    for r in d["reasons"]:
        out.print(f"  reason: {escape(r)}")
    faces = len(d["faces"]) if "faces" in d["checks_run"] else "not checked"
    out.print(f"  explicit: {d['explicit']:.2f}   faces: {faces}")
    for s in d["minor_signals"]:
        out.print(f"  minor signal: {escape(json.dumps(s))}")
    out.print(f"  checks run: {', '.join(d['checks_run']) or 'none'}")
    for c in d["checks_not_run"]:
        out.print(f"  [yellow]not run[/]: {c['check']} -- {escape(c['reason'])}")


def _batch(path: Path, semantic: bool, account: str | None, phrases: bool) -> None:
    """One JSON object per non-blank line of ``path`` ("-": stdin)."""
    guard = _prompt_guard(semantic, phrases)
    attempts = _attempt_log() if account else None
    try:
        fh = sys.stdin if str(path) == "-" else path.open(encoding="utf-8", errors="replace")
    except OSError as e:
        raise fail(SentinelleError(f"cannot read {path}: {e.strerror}", "io_error")) from None
    counts = {"allow": 0, "review": 0, "block": 0, "error": 0}
    with fh:
        for line in fh:
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                r = guard.check(text)
            except SentinelleError as e:
                counts["error"] += 1
                print(json.dumps({"text": text, "error": e.to_dict()}, ensure_ascii=False))
                continue
            counts[r.decision] += 1
            print(json.dumps(r.to_dict(), ensure_ascii=False), flush=False)
            if attempts is not None:
                attempts.record_prompt(r, account_id=account)
    sys.stdout.flush()
    err_console().print(", ".join(f"{n} {k}" for k, n in counts.items()))


def register(app: typer.Typer) -> None:
    """Add the ``guard`` command group to ``app``."""
    guard = typer.Typer(
        name="guard",
        help=(
            "Generation guard: check prompts before, and images after, generation. "
            "Exit status: 0 allow, 3 review, 4 block, 1 error."
        ),
        no_args_is_help=True,
    )
    app.add_typer(guard)

    @guard.command("prompt")
    def prompt_command(
        text: Annotated[str | None, typer.Argument(help="The prompt to check.")] = None,
        file: Annotated[
            Path | None,
            typer.Option(
                "--file", "-f", help="Check every line of this file ('-': stdin); JSON lines."
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
        account: Annotated[
            str | None,
            typer.Option("--account", help="Caller account id: log blocks, escalate repeats."),
        ] = None,
        semantic: Annotated[
            bool, typer.Option("--semantic", help="Also run the optional semantic layer.")
        ] = False,
        phrases: Annotated[
            bool,
            typer.Option(
                "--phrases/--no-phrases",
                help="Apply the database's allow/deny lists (when SENTINELLE_DATABASE_URL is set).",
            ),
        ] = True,
    ) -> None:
        """Check a prompt (allow / review / block) with categories and evidence."""
        if (text is None) == (file is None):
            raise typer.BadParameter("give either a prompt TEXT or --file, not both")
        try:
            if file is not None:
                _batch(file, semantic, account, phrases)
                return
            assert text is not None
            r = _prompt_guard(semantic, phrases).check(text)
            d = r.to_dict()
            if as_json:
                print(json.dumps(d, ensure_ascii=False))
            else:
                _print_prompt(d)
            if account:
                _report_block(_attempt_log().record_prompt(r, account_id=account))
        except SentinelleError as e:
            raise fail(e) from None
        raise typer.Exit(EXIT_CODES[r.decision])

    @guard.command("explain")
    def explain_command(
        text: Annotated[str, typer.Argument(help="The prompt to explain.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
        phrases: Annotated[
            bool,
            typer.Option(
                "--phrases/--no-phrases",
                help="Apply the database's allow/deny lists (when SENTINELLE_DATABASE_URL is set).",
            ),
        ] = True,
    ) -> None:
        """Why a prompt is allowed or blocked: the spans that fired, under which rule and
        language, and the matches that were refused (and why)."""
        try:
            r, refused = _prompt_guard(False, phrases).explain(text)
        except SentinelleError as e:
            raise fail(e) from None
        d = r.to_dict()
        if as_json:
            print(json.dumps({**d, "refused": refused}, ensure_ascii=False))
        else:
            _print_explain(d, refused)
        raise typer.Exit(EXIT_CODES[r.decision])

    for kind in ("allow", "deny"):
        _register_list(guard, kind)

    @guard.command("image")
    def image_command(
        file: Annotated[Path, typer.Argument(help="The generated image to check.")],
        prompt: Annotated[
            str | None,
            typer.Option("--prompt", help="The prompt that produced it (checked too)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
        account: Annotated[
            str | None,
            typer.Option("--account", help="Caller account id: log blocks, escalate repeats."),
        ] = None,
        faces: Annotated[
            str | None,
            typer.Option(
                "--faces",
                help="Face and age checks: when_needed (only on explicit images), always or "
                "off. Default: SENTINELLE_GUARD_FACES (when_needed).",
            ),
        ] = None,
    ) -> None:
        """Check a generated image: explicit content, faces, apparent age (if configured)."""
        import dataclasses

        from ..guard.config import GuardConfig
        from ..guard.image import ImageGuard
        from ..media.limits import DEFAULT_LIMITS

        try:
            try:
                size = file.stat().st_size
                if size > DEFAULT_LIMITS.max_file_bytes:
                    raise SentinelleError(
                        f"{file} is {size} bytes, over the limit of "
                        f"{DEFAULT_LIMITS.max_file_bytes}",
                        "file_too_large",
                    )
                data = file.read_bytes()
            except OSError as e:
                raise SentinelleError(f"cannot read {file}: {e.strerror}", "io_error") from None
            cfg = GuardConfig.from_env()
            if faces is not None:
                cfg = dataclasses.replace(cfg, faces=faces.strip().lower().replace("-", "_"))
            prompt_result = _prompt_guard(False).check(prompt) if prompt is not None else None
            r = ImageGuard(cfg).check(data, prompt_result=prompt_result)
            del data
            d = r.to_dict()
            if as_json:
                print(json.dumps(d, ensure_ascii=False))
            else:
                _print_image(d)
            if account:
                rec = _attempt_log().record_image(r, account_id=account, prompt_text=prompt)
                _report_block(rec)
        except SentinelleError as e:
            raise fail(e) from None
        raise typer.Exit(EXIT_CODES[r.decision])
