"""End to end through the CLI: a VICS bank import with series and victim flags,
`sentinelle triage ... --html --vics` on a folder of benign photos, then
`triage-export` and `triage-import-vics` (issue 12)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from triage_cases import PHOTOS
from typer.testing import CliRunner

from sentinelle.cli.main import app
from sentinelle.store.db import open_engine
from sentinelle.triage import store

CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"


def jpeg(i: int, side: int = 320) -> bytes:
    im = Image.open(PHOTOS / f"kodim{i:02d}.png").convert("RGB")
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=88)
    return buf.getvalue()


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    url = f"sqlite:///{tmp_path / 'triage.db'}"
    monkeypatch.setenv("SENTINELLE_DATABASE_URL", url)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        res = runner.invoke(app, list(args))
        assert res.exit_code == code, (args, res.exit_code, res.output, res.exception)
        return res.output

    run.url = url  # type: ignore[attr-defined]
    return run


def test_triage_cli_writes_html_and_vics_and_imports_back(cli, tmp_path: Path) -> None:
    seized = tmp_path / "seized"
    (seized / "dcim").mkdir(parents=True)
    photos = {i: jpeg(i) for i in (7, 8, 9)}
    (seized / "dcim" / "a.jpg").write_bytes(photos[7])
    (seized / "dcim" / "a copy.jpg").write_bytes(photos[7])  # exact copy
    (seized / "dcim" / "b.jpg").write_bytes(photos[8])
    with zipfile.ZipFile(seized / "old.zip", "w") as z:
        z.writestr("phone/c.jpg", photos[9])
    (seized / "notes.jpg").write_bytes(b"\xff\xd8 truncated")
    # a bank of known material imported from VICS: photo 9 is known, victim not identified
    known_md5 = hashlib.md5(photos[9]).hexdigest()
    vics_bank = tmp_path / "bank.json"
    vics_bank.write_text(
        json.dumps(
            {
                "@odata.context": CONTEXT,
                "value": [
                    {
                        "Media": [
                            {
                                "MediaID": 77,
                                "Category": 1,
                                "MD5": known_md5,
                                "Series": "Harbour",
                                "VictimIdentified": False,
                                "IsDistributed": True,
                            }
                        ]
                    }
                ],
            }
        )
    )
    cli("bank", "create", "known")
    cli("bank", "import", "known", str(vics_bank), "--format", "vics")
    html, vics = tmp_path / "out" / "report.html", tmp_path / "out" / "case.json"
    html.parent.mkdir()
    cli(
        "triage",
        str(seized),
        "--case",
        "op-e2e",
        "--html",
        str(html),
        "--vics",
        str(vics),
        "--workers",
        "1",
        "--scene",
        "none",
        "--no-provenance",
        "-q",
    )
    doc = json.loads(vics.read_text())
    media = doc["value"][0]["Media"]
    by_md5 = {m["MD5"]: m for m in media}
    broken_md5 = hashlib.md5(b"\xff\xd8 truncated").hexdigest()
    assert set(by_md5) == {hashlib.md5(p).hexdigest() for p in photos.values()} | {broken_md5}
    broken = {p["PropertyName"]: p["PropertyValue"] for p in by_md5[broken_md5]["MediaMetadata"]}
    assert "SentinelleError" in broken  # hashed (MD5 still matches in other tools), not decodable
    a = by_md5[hashlib.md5(photos[7]).hexdigest()]
    assert sorted(Path(f["FilePath"]).name for f in a["MediaFiles"]) == ["a copy.jpg", "a.jpg"]
    c = by_md5[known_md5]
    assert c["MediaFiles"][0]["FilePath"].endswith("old.zip!/phone/c.jpg")
    assert (c["Category"], c["Series"], c["VictimIdentified"]) == (1, "Harbour", False)
    assert c["IsPrecategorized"] is True and "Category" not in a
    page = html.read_text()
    assert "Content-Security-Policy" in page and "victim NOT identified" in page
    assert len(re.findall(r'<button type="button" data-reveal=', page)) >= 2
    assert "notes.jpg" in page  # the unreadable file is a per-file error
    # a reviewer names the new photos' series in another tool; import it back
    for m in media:
        if m["MD5"] not in (known_md5, broken_md5):
            m["Series"] = "Garden 2021"
            m["Category"] = 2
    back = tmp_path / "back.json"
    back.write_text(json.dumps(doc))
    out = cli("triage-import-vics", str(back), "--case", "op-e2e", "--json")
    rep = json.loads(out)
    assert (rep["media"], rep["matched"], rep["unmatched"]) == (4, 4, 0)
    assert rep["categorized"] == 3
    eng = open_engine(cli.url)
    try:
        case = store.get_case(eng, "op-e2e")
        names = {s.name for s in store.list_series(eng, case.id)}
        assert "Garden 2021" in names
    finally:
        eng.dispose()
    # outputs again without re-running the triage: names and categories come out
    cli(
        "triage-export", "--case", "op-e2e", "--vics", str(vics), "--html", str(html), "--no-reveal"
    )
    again = {m["MD5"]: m for m in json.loads(vics.read_text())["value"][0]["Media"]}
    assert again[a["MD5"]]["Series"] == "Garden 2021" and again[a["MD5"]]["Category"] == 2
    assert "Garden 2021" in html.read_text()
    assert 'data-reveal="' not in html.read_text().split("<script>")[0]


def test_cli_errors_are_structured(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"value": [{"MD5": "nothex"}]}')
    cli("triage-import-vics", str(bad), "--case", "nope", code=1)
    out = cli("triage-export", "--case", "nope", "--vics", str(tmp_path / "x.json"), code=1)
    assert "unknown_case" in out or "no triage case" in out


def test_synthetic_seized_folder_gives_every_copy_in_vics_and_html(cli, tmp_path: Path) -> None:
    """The issue's "done when": `sentinelle triage` on the synthetic seized folder writes the
    HTML report and the VICS export, and every readable copy is in the export."""
    from triage_seized import build_seized, enroll_known

    sz = build_seized(
        tmp_path / "seized",
        n_known=3,
        n_series=2,
        shots_per_series=3,
        n_singles=3,
        n_ai=2,
        copies=1,
    )
    eng = open_engine(cli.url)
    try:
        enroll_known(eng, sz)
    finally:
        eng.dispose()
    html, vics = tmp_path / "r.html", tmp_path / "v.json"
    cli(
        "triage",
        str(sz.root),
        "--case",
        "synthetic",
        "--html",
        str(html),
        "--vics",
        str(vics),
        "--workers",
        "1",
        "--scene",
        "none",
        "-q",
    )
    media = json.loads(vics.read_text())["value"][0]["Media"]
    paths = {f["FilePath"] for m in media for f in m["MediaFiles"]}
    want = {str(sz.root / rel) for rel in sz.truth}
    assert want <= paths, sorted(want - paths)[:5]
    tiers = {
        p["PropertyValue"]
        for m in media
        for p in m["MediaMetadata"]
        if p["PropertyName"] == "SentinelleTier"
    }
    assert {"camera_new", "known"} <= tiers
    known = [m for m in media if m.get("IsPrecategorized")]
    assert known and all(m.get("Category") is None for m in known)  # "B2" is not a VICS int
    assert all(
        any(
            p["PropertyName"] == "IndustryCategory" and p["PropertyValue"] == "B2"
            for p in m["MediaMetadata"]
        )
        for m in known
    )
    page = html.read_text()
    assert page.count('<tr id="g-') == len(
        {
            p["PropertyValue"]
            for m in media
            for p in m["MediaMetadata"]
            if p["PropertyName"] == "SentinelleGroup"
        }
    )
