"""Deployment-level allow/deny phrase lists: storage, audit, policy_id, CLI, API, and the
rule that an allow entry never switches off an obfuscated term (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sentinelle.audit import list_events, verify_chain
from sentinelle.cli.main import app as cli_app
from sentinelle.guard import PromptGuard
from sentinelle.guard import phrases as pl
from sentinelle.guard.config import GuardInputError
from sentinelle.service.app import create_app
from sentinelle.service.keys import create_key
from sentinelle.service.settings import Settings

BLOCKED_FR = "un enfant aux pieds nus sur le pont"  # blocked without the lexicon sense


def test_add_list_remove_versioned_and_audited(engine) -> None:  # type: ignore[no-untyped-def]
    assert pl.current_version(engine) == 0
    entry, v1 = pl.add(
        engine, kind="allow", language="fr", phrase="  Pont  DE  Pierre ", actor="cli", note="n"
    )
    assert entry.phrase == "pont de pierre" and v1 == 1  # stored normalised
    _, v2 = pl.add(engine, kind="deny", language="*", phrase="zzq code", actor="user:alice")
    assert v2 == 2
    assert [e.phrase for e in pl.list_entries(engine, kind="allow")] == ["pont de pierre"]
    assert [e.language for e in pl.list_entries(engine, kind="deny")] == ["*"]
    with pytest.raises(GuardInputError) as err:
        pl.add(engine, kind="deny", language="fr", phrase="PONT de pierre", actor="cli")
    assert err.value.code == "phrase_exists"
    assert pl.current_version(engine) == 2  # a refused change does not bump the version
    removed, v3 = pl.remove(
        engine, kind="allow", language="fr", phrase="pont de pierre", actor="cli"
    )
    assert removed.id == entry.id and v3 == 3
    with pytest.raises(GuardInputError) as err:
        pl.remove(engine, entry_id=removed.id, actor="cli")
    assert err.value.code == "phrase_not_found"
    events = list_events(engine, action="guard.phrase")
    assert [e.action for e in events] == [
        "guard.phrase.remove",
        "guard.phrase.add",
        "guard.phrase.add",
    ]
    assert events[-1].details == {"kind": "allow", "language": "fr", "version": 1}
    assert {e.actor for e in events} == {"cli", "user:alice"}
    assert verify_chain(engine).ok


@pytest.mark.parametrize(
    ("kind", "language", "phrase", "code"),
    [
        ("maybe", "fr", "x", "bad_kind"),
        ("allow", "xx", "x", "bad_language"),
        ("allow", "fr", "  ", "bad_phrase"),
        ("allow", "fr", "!!!", "bad_phrase"),
        ("allow", "fr", "a" * 201, "bad_phrase"),
    ],
)
def test_bad_input_is_refused(engine, kind, language, phrase, code) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GuardInputError) as err:
        pl.add(engine, kind=kind, language=language, phrase=phrase, actor="cli")
    assert err.value.code == code
    assert pl.current_version(engine) == 0


def test_allow_and_deny_apply_after_normalisation(engine) -> None:  # type: ignore[no-untyped-def]
    guard = PromptGuard()
    assert guard.check("Ein Kind mit einem Zzqblau-Drachen").decision == "allow"
    pl.add(engine, kind="deny", language="de", phrase="zzqblau drachen", actor="cli")
    pl.add(engine, kind="allow", language="en", phrase="nude beach ball", actor="cli")
    lists = pl.load(engine)
    g = guard.with_phrases(lists)
    assert g.policy_id.endswith(";phrases=v2") and guard.policy_id != g.policy_id
    r = g.check("Ein Kind mit einem ZZQBLAU Drachen")
    assert r.decision == "block" and r.policy_id == g.policy_id
    assert [e["rule"] for e in r.evidence if e["category"] == "deny"] == ["deny:v2"]
    # the deny phrase also survives the usual tricks (skeleton view)
    assert g.check("ein kind, z.z.q.b.l.a.u drachen").decision == "block"
    # it applies in its own language only
    assert g.check("a kid with a zzqblau drachen kite in the park today").decision == "allow"
    # allow: a plain phrase switches the terms inside it off
    assert guard.check("a girl with a nude beach ball").decision != "allow"
    assert g.check("a girl with a NUDE   beach ball").decision == "allow"


@pytest.mark.parametrize(
    "text",
    [
        "a girl with a n.u.d.e beach ball",
        "a girl with a nüüüde beach ball",
        "a girl with a nud3 beach ball",
        "a girl with a nudе beach ball",  # Cyrillic е
    ],
)
def test_allow_cannot_switch_off_an_obfuscated_term(engine, text: str) -> None:  # type: ignore[no-untyped-def]
    pl.add(engine, kind="allow", language="*", phrase="nude beach ball", actor="cli")
    pl.add(engine, kind="allow", language="en", phrase=text.split(" with a ")[1], actor="cli")
    g = PromptGuard().with_phrases(pl.load(engine))
    r = g.check(text)
    assert r.decision == "block", r.to_dict()


def test_cache_sees_changes(engine) -> None:  # type: ignore[no-untyped-def]
    cache = pl.PhraseCache(engine, ttl=3600)
    assert cache.current().version == 0
    pl.add(engine, kind="allow", language="fr", phrase="pont", actor="cli")
    assert cache.current().version == 0  # within the TTL
    cache.invalidate()
    assert cache.current().version == 1 and cache.current().entries[0].phrase == "pont"


# ---------------------------------------------------------------------- CLI
@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    return lambda *args: runner.invoke(cli_app, ["guard", *args])


def test_cli_allow_deny_and_explain(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("explain", "--json", "Un garçon tient ses mains sur sa tête")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["decision"] == "allow" and d["policy_id"].endswith(";phrases=v0")
    assert any(x["normalized"] == "tette" and x["reason"] == "language" for x in d["refused"])
    r = cli("explain", "Un enfant nu")
    assert r.exit_code == 4 and "fired:" in r.output and "'nu'" in r.output and "(fr)" in r.output
    r = cli("deny", "add", "--lang", "fr", "Zzq Pont", "--note", "ticket 7")
    assert r.exit_code == 0 and "version 1" in r.output
    r = cli("deny", "list", "--json")
    listed = json.loads(r.output)
    assert listed["version"] == 1 and listed["phrases"][0]["phrase"] == "zzq pont"
    assert listed["phrases"][0]["created_by"] == "cli"
    r = cli("prompt", "--json", "un chien sur le zzq pont de la ville")
    assert r.exit_code == 4 and json.loads(r.output)["policy_id"].endswith(";phrases=v1")
    r = cli("prompt", "--no-phrases", "un chien sur le zzq pont de la ville")
    assert r.exit_code == 0
    r = cli("deny", "remove", "--lang", "fr", "zzq pont")
    assert r.exit_code == 0 and "version 2" in r.output
    r = cli("deny", "remove", "--lang", "fr", "zzq pont")
    assert r.exit_code == 1 and "phrase_not_found" in r.output
    r = cli("allow", "add", "--lang", "xx", "a b")
    assert r.exit_code == 1 and "bad_language" in r.output
    r = cli("allow", "list")
    assert r.exit_code == 0 and "version 2: 0 phrase(s)" in r.output


# ---------------------------------------------------------------------- API
@pytest.fixture()
def svc(db_url: str):  # type: ignore[no-untyped-def]
    app = create_app(Settings(database_url=db_url, key_cache_s=0.0, rate_limit=0.0))
    state = app.state.sentinelle
    admin_rec, admin = create_key(state.engine, "admin", ["admin"])
    _, scan = create_key(state.engine, "scanner", ["scan"])
    with TestClient(app) as client:
        yield SimpleNamespace(
            client=client,
            state=state,
            admin={"Authorization": f"Bearer {admin}"},
            scan={"Authorization": f"Bearer {scan}"},
            admin_actor=f"key:{admin_rec.id}",
        )


def test_api_phrase_routes(svc) -> None:  # type: ignore[no-untyped-def]
    c = svc.client
    body = {"kind": "deny", "language": "en", "phrase": "Zzq Rocket"}
    assert c.post("/v1/guard/phrases", json=body, headers=svc.scan).status_code == 403
    assert c.get("/v1/guard/phrases", headers=svc.scan).status_code == 403
    r = c.post("/v1/guard/phrases", json=body, headers=svc.admin)
    assert r.status_code == 201, r.text
    entry = r.json()["phrase"]
    assert entry["phrase"] == "zzq rocket" and r.json()["version"] == 1
    assert c.post("/v1/guard/phrases", json=body, headers=svc.admin).status_code == 409
    bad = {**body, "language": "xx"}
    r = c.post("/v1/guard/phrases", json=bad, headers=svc.admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_language"
    r = c.post("/v1/guard/prompt", json={"text": "a boy with a zzq rocket"}, headers=svc.scan)
    assert r.json()["decision"] == "block" and r.json()["policy_id"].endswith(";phrases=v1")
    listed = c.get("/v1/guard/phrases?kind=deny", headers=svc.admin).json()
    assert listed["version"] == 1 and [p["id"] for p in listed["phrases"]] == [entry["id"]]
    r = c.delete(f"/v1/guard/phrases/{entry['id']}", headers=svc.admin)
    assert r.status_code == 200 and r.json()["version"] == 2
    assert c.delete(f"/v1/guard/phrases/{entry['id']}", headers=svc.admin).status_code == 404
    assert c.delete("/v1/guard/phrases/0", headers=svc.admin).status_code == 422
    r = c.post("/v1/guard/prompt", json={"text": "a boy with a zzq rocket"}, headers=svc.scan)
    assert r.json()["decision"] == "allow" and r.json()["policy_id"].endswith(";phrases=v2")
    actors = {e.actor for e in list_events(svc.state.engine, action="guard.phrase")}
    assert actors == {svc.admin_actor}
