"""Sources: folders, archives read in memory, and every hostile input as a per-file error."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from sentinelle.triage.sources import SourceLimits, iter_items, read_bytes

PHOTO = Path(__file__).resolve().parents[2].parent / "shared/corpora/photos/bsds500/100007.jpg"


def _jpeg(seed: int = 0) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (64, 64), (seed % 255, 80, 120)).save(b, "JPEG")
    return b.getvalue()


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return b.getvalue()


def _tar(entries: dict[str, bytes], mode: str = "w") -> bytes:
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode) as t:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return b.getvalue()


def _items(root: Path, **kw):
    return {i.path.replace(str(root) + "/", ""): i for i in iter_items([root], **kw)}


def test_folder_zip_tar_and_nested_archives_are_read_in_memory(tmp_path: Path) -> None:
    photo = PHOTO.read_bytes()
    inner = _zip({"deep/b.jpg": _jpeg(1)})
    (tmp_path / "a.jpg").write_bytes(photo)
    (tmp_path / "c.zip").write_bytes(_zip({"x/a.jpg": photo, "inner.zip": inner}))
    (tmp_path / "d.tar.gz").write_bytes(_tar({"t/a.jpg": photo}, "w:gz"))
    (tmp_path / "e.tar").write_bytes(_tar({"t/e.jpg": _jpeg(2)}))
    before = set(os.listdir(tmp_path))
    items = _items(tmp_path)
    assert set(os.listdir(tmp_path)) == before  # nothing extracted
    assert items["a.jpg"].kind == "file" and items["a.jpg"].data is None
    m = items["c.zip!/x/a.jpg"]
    assert m.kind == "member" and m.data == photo and m.member_path == "x/a.jpg"
    assert m.source_path == str(tmp_path / "c.zip")
    nested = items["c.zip!/inner.zip!/deep/b.jpg"]
    assert nested.data == _jpeg(1) and nested.error is None
    assert items["d.tar.gz!/t/a.jpg"].data == photo
    assert items["e.tar!/t/e.jpg"].data == _jpeg(2)
    assert items["c.zip"].kind == "archive" and items["c.zip"].error is None
    assert read_bytes(str(tmp_path / "c.zip"), "inner.zip!/deep/b.jpg") == _jpeg(1)
    assert read_bytes(str(tmp_path / "d.tar.gz"), "t/a.jpg") == photo
    with pytest.raises(KeyError):
        read_bytes(str(tmp_path / "c.zip"), "nope.jpg")


def test_zip_bomb_and_huge_members_are_errors_not_memory(tmp_path: Path) -> None:
    bomb = _zip({"bomb.bmp": b"\0" * (64 * 1024**2)})  # 64 MiB of zeros, ~64 KB zipped
    (tmp_path / "bomb.zip").write_bytes(bomb)
    lim = SourceLimits(max_member_bytes=8 * 1024**2)
    items = _items(tmp_path, limits=lim)
    err = items["bomb.zip!/bomb.bmp"].error
    assert err is not None and err[0] == "zip_bomb"
    assert items["bomb.zip!/bomb.bmp"].data is None
    # a member that lies about its size (declared small, inflates big)
    data = bytearray(_zip({"liar.bin": b"\0" * (16 * 1024**2)}))
    # patch the declared uncompressed size in the central directory and local header
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    data[22:26] = (100).to_bytes(4, "little")
    (tmp_path / "bomb.zip").unlink()
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    items = _items(tmp_path, limits=lim)
    err = items["liar.zip!/liar.bin"].error
    assert err is not None and err[0] in ("zip_bomb", "corrupt_archive")


def test_archive_budget_and_nesting_depth(tmp_path: Path) -> None:
    photo = PHOTO.read_bytes()
    level = _zip({"p.jpg": photo})
    for _ in range(4):
        level = _zip({"z.zip": level})
    (tmp_path / "russian.zip").write_bytes(level)
    items = _items(tmp_path, limits=SourceLimits(max_depth=3))
    deep = [i for i in items.values() if i.flag and i.flag[0] == "archive_too_deep"]
    assert len(deep) == 1 and deep[0].data is not None  # hashed as a file, not opened
    assert deep[0].path.count("!/") == 3
    many = _zip({f"m{i}.jpg": photo for i in range(5)})
    (tmp_path / "many.zip").write_bytes(many)
    items = _items(tmp_path, limits=SourceLimits(max_total_bytes=len(photo) * 2 + 10))
    codes = sorted((i.error or ("ok",))[0] for k, i in items.items() if k.startswith("many.zip!/"))
    assert codes.count("ok") == 2 and codes.count("archive_too_large") == 3


def test_path_traversal_links_and_corrupt_archives(tmp_path: Path) -> None:
    jpg = _jpeg(3)
    (tmp_path / "evil.zip").write_bytes(
        _zip({"../../etc/passwd.jpg": jpg, "/abs/x.jpg": jpg, "C:\\win\\y.jpg": jpg})
    )
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        link = tarfile.TarInfo("link.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        t.addfile(link)
        hard = tarfile.TarInfo("hard.jpg")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "../../x"
        t.addfile(hard)
        dev = tarfile.TarInfo("dev")
        dev.type = tarfile.CHRTYPE
        t.addfile(dev)
    (tmp_path / "links.tar").write_bytes(b.getvalue())
    good = _zip({"a.jpg": jpg, "b.jpg": _jpeg(4)})
    (tmp_path / "trunc.zip").write_bytes(good[: len(good) // 2])
    (tmp_path / "garbage.zip").write_bytes(b"PK\x03\x04" + os.urandom(500))
    (tmp_path / "trunc.tar.gz").write_bytes(_tar({"a.jpg": PHOTO.read_bytes()}, "w:gz")[:3000])
    items = _items(tmp_path)
    flagged = {k: i for k, i in items.items() if k.startswith("evil.zip!/")}
    assert len(flagged) == 3
    for k, i in flagged.items():
        assert i.flag is not None and i.flag[0] == "unsafe_member_name"
        assert ".." not in k.split("!/", 1)[1].split("/") and not k.split("!/")[1].startswith("/")
        assert i.data == jpg  # still hashed: it is evidence
    assert items["links.tar!/link.jpg"].error[0] == "archive_link"
    assert items["links.tar!/hard.jpg"].error[0] == "archive_link"
    assert items["links.tar!/dev"].error[0] == "not_a_file"
    assert items["trunc.zip"].error is not None or any(
        i.error and i.error[0] == "corrupt_archive" for k, i in items.items() if "trunc.zip" in k
    )
    assert items["garbage.zip"].kind == "archive"
    assert items["garbage.zip"].error[0] == "corrupt_archive"
    tgz = [i for k, i in items.items() if k.startswith("trunc.tar.gz")]
    assert any(i.error and i.error[0] == "corrupt_archive" for i in tgz)
    assert not list(tmp_path.parent.glob("etc")) and not Path("/abs").exists()


def test_symlink_loops_empty_files_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)
    items = list(iter_items([tmp_path, tmp_path / "missing"]))
    by = {Path(i.path).name: i for i in items}
    assert by["empty.jpg"].kind == "file" and by["empty.jpg"].error is None  # hashing says empty
    assert by["loop_a"].error[0] == "io_error" and by["loop_b"].error[0] == "io_error"
    assert "up" not in by  # a symlinked folder inside a walk is never followed (no loop)
    assert by["missing"].error[0] == "not_found"
    assert len(items) == 4
    # given as a source itself, a symlinked folder is an error, not a walk
    (by_src,) = list(iter_items([tmp_path / "sub" / "up"]))
    assert by_src.error is not None and by_src.error[0] == "not_a_file"
