"""The `make run` job (the demo) and the public Python API as the README shows it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import sentinelle
from sentinelle.cli.main import app
from sentinelle.scan.records import read_records


def test_demo_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SENTINELLE_DATABASE_URL", raising=False)
    res = CliRunner().invoke(app, ["demo", "--out", "demo", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sentinelle.db").exists()  # the embedded SQLite default
    recs = {Path(r["path"]).name: r for r in read_records(tmp_path / "demo" / "scan.jsonl")}
    copies = [r for n, r in recs.items() if n.startswith("copy-")]
    unrelated = [r for n, r in recs.items() if n.startswith("unrelated-")]
    assert len(copies) == 24 and len(unrelated) == 12
    assert sum(1 for r in copies if r["matches"]) >= 20
    assert all(not r["matches"] for r in unrelated)
    assert {recs[n]["error"]["code"] for n in ("truncated.jpg", "not-an-image.png", "empty.gif")}
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "demo-known" in html and "<img" not in html
    # running it again is idempotent: nothing new is added to the bank
    res2 = CliRunner().invoke(app, ["demo", "--out", "demo", "--workers", "1"])
    assert res2.exit_code == 0 and "0 entries added" in res2.output


def test_public_api(tmp_path: Path) -> None:
    from sentinelle import BankStore, Matcher, PDQIndex, hash_bytes, hash_file
    from sentinelle.store.db import open_engine

    img = Image.linear_gradient("L").resize((300, 200)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    p = tmp_path / "g.png"
    p.write_bytes(buf.getvalue())
    r = hash_file(p)
    assert r.error is None and r.signal("pdq").hash == hash_bytes(buf.getvalue()).signal("pdq").hash

    store = BankStore(open_engine(f"sqlite:///{tmp_path / 'b.db'}"))
    store.create_bank("known")
    lst = tmp_path / "pdq.txt"
    lst.write_text(r.signal("pdq").hash + "\n")
    assert store.import_file("known", lst, "pdq-list").added == 1
    out = io.StringIO()
    store.export("known", "pdq-list", out)
    assert r.signal("pdq").hash in out.getvalue()
    assert [m.bank for m in Matcher(store).match(r)] == ["known"]

    index = PDQIndex()
    hashes = np.random.default_rng(0).integers(0, 256, (3, 32), dtype=np.uint8)
    index.add([10, 11, 12], hashes)
    index.remove([11])
    res = index.search(hashes, max_distance=31)
    assert [hits[0] for hits in res if hits] == [(10, 0), (12, 0)]
    assert res[1] == [] or all(i != 11 for i, _ in res[1])
    assert sentinelle.__version__
    with pytest.raises(AttributeError):
        _ = sentinelle.no_such_thing  # type: ignore[attr-defined]
