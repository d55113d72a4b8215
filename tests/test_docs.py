"""The docs name everything a maintainer or an operator must find (as Datasette's
``test_docs.py`` does): every module, every HTTP route, every setting, every extension
point and every built-in plugin. A new one fails here until it is documented.

* modules: one row in their package's table in ``docs/ARCHITECTURE.md`` (*Packages*);
* the layer list of ``docs/ARCHITECTURE.md`` is the order ``test_layers.py`` enforces;
* routes: the path appears in ``README.md`` or ``docs/*.md``;
* settings (``SENTINELLE_*`` environment variables read in ``src/``): in ``README.md`` or
  ``docs/*.md``;
* extension points (signal types, formats, exchanges, provenance sources, guard languages,
  plugins, routers, command groups) and registered job kinds / periodic tasks: in
  ``docs/ARCHITECTURE.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_layers import LAYERS, PKG

ROOT = PKG.parents[1]
ARCH = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
ALL_DOCS = "\n".join(
    p.read_text(encoding="utf-8")
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
)


def documented_modules() -> dict[str, set[str]]:
    """``{package: {module names in its table}}`` from the *Packages* section."""
    out: dict[str, set[str]] = {}
    current: str | None = None
    for line in ARCH.split("## Packages", 1)[1].split("\n## ", 1)[0].splitlines():
        m = re.match(r"^### `sentinelle\.([a-z_]+)`", line)
        if m:
            current = m.group(1)
            out[current] = set()
            continue
        m = re.match(r"^\| `([A-Za-z0-9_.*]+)` \|", line)
        if m and current is not None:
            out[current].add(m.group(1))
    return out


def source_modules() -> dict[str, set[str]]:
    """``{package: {module names relative to it}}`` of the source tree."""
    out: dict[str, set[str]] = {}
    for p in sorted(PKG.iterdir()):
        if p.suffix == ".py" and p.stem != "__init__":
            out[p.stem] = set()
        elif (p / "__init__.py").is_file() or (p.is_dir() and any(p.glob("*.py"))):
            mods = set()
            for f in p.rglob("*.py"):
                if "migrations" in f.parts:
                    continue
                parts = list(f.relative_to(p).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                if parts:
                    mods.add(".".join(parts))
            out[p.name] = mods
    return out


def _covered(name: str, documented: set[str]) -> bool:
    return name in documented or any(
        d.endswith(".*") and name.startswith(d[:-1]) for d in documented
    )


def test_every_package_and_module_is_in_the_map() -> None:
    docs = documented_modules()
    missing = [
        f"sentinelle.{pkg}" + (f".{mod}" if mod else "")
        for pkg, mods in source_modules().items()
        for mod in (
            [""] if pkg not in docs else sorted(m for m in mods if not _covered(m, docs[pkg]))
        )
    ]
    assert not missing, (
        "add a row for each to its package's table in docs/ARCHITECTURE.md (Packages):\n"
        + "\n".join(missing)
    )


def test_the_map_names_no_module_that_does_not_exist() -> None:
    src = source_modules()
    stale = [
        f"sentinelle.{pkg}.{mod}"
        for pkg, mods in documented_modules().items()
        for mod in mods
        if not mod.endswith(".*") and mod not in src.get(pkg, set())
    ]
    assert not stale, f"docs/ARCHITECTURE.md names modules that are gone: {stale}"


def test_the_layer_list_is_the_enforced_one() -> None:
    block = ARCH.split("<!-- layers", 1)[1].split("<!-- /layers -->", 1)[0]
    listed = re.findall(r"^\d+\. `([a-z_]+)`", block, flags=re.M)
    assert tuple(listed) == LAYERS


def test_every_route_is_documented(tmp_path: Path) -> None:
    from sentinelle.service.app import create_app
    from sentinelle.service.settings import Settings

    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'docs.db'}"), start_background=False
    )
    paths = sorted({r.path for r in app.routes if getattr(r, "methods", None)})
    fastapi_own = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    missing = [p for p in paths if p not in ALL_DOCS and p not in fastapi_own]
    assert not missing, f"routes not named in README.md or docs/*.md: {missing}"


def settings_read() -> set[str]:
    names: set[str] = set()
    for f in PKG.rglob("*.py"):
        names |= set(re.findall(r"SENTINELLE_[A-Z0-9_]*[A-Z0-9]\b", f.read_text(encoding="utf-8")))
    return names


def test_every_setting_is_documented() -> None:
    missing = sorted(n for n in settings_read() if n not in ALL_DOCS)
    assert not missing, f"settings not documented in README.md or docs/*.md: {missing}"


def extension_points() -> dict[str, list[str]]:
    from sentinelle.cli.main import COMMAND_MODULES
    from sentinelle.exchanges.registry import BUILTIN_TYPES
    from sentinelle.formats import FORMATS
    from sentinelle.plugins import DEFAULT_PLUGINS
    from sentinelle.provenance.sources import BUILTIN_SOURCES
    from sentinelle.service.app import ROUTER_MODULES
    from sentinelle.signals.signal_types import signal_type_names

    lexicons = sorted(p.stem for p in (PKG / "guard" / "lexicons").glob("*.toml"))
    return {
        "signal type": list(signal_type_names()),
        "format": list(FORMATS),
        "exchange": list(BUILTIN_TYPES),
        "provenance source": [s.name for s in BUILTIN_SOURCES],
        "guard language": lexicons,
        "plugin": list(DEFAULT_PLUGINS),
        "router": list(ROUTER_MODULES),
        "command group": [f"sentinelle.cli.{m}" for m in COMMAND_MODULES],
    }


def _in_map(dotted: str) -> bool:
    """``sentinelle.pkg.mod`` has a row in its package's table."""
    _, pkg, *rest = dotted.split(".")
    return _covered(".".join(rest), documented_modules().get(pkg, set()))


@pytest.mark.parametrize("kind", sorted(extension_points()))
def test_every_extension_point_is_documented(kind: str) -> None:
    names = extension_points()[kind]
    assert names, kind
    if kind in ("router", "command group"):  # modules: a row in the map
        missing = [n for n in names if not _in_map(n)]
    else:
        missing = [n for n in names if f"`{n}`" not in ARCH]
    assert not missing, f"{kind}s not named in docs/ARCHITECTURE.md: {missing}"


def test_every_job_kind_and_periodic_task_is_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentinelle.jobs import worker
    from sentinelle.plugins import load_plugins

    names: list[str] = []
    monkeypatch.setattr(worker, "register_handler", lambda kind, fn: names.append(kind))
    monkeypatch.setattr(worker, "register_periodic", lambda name, fn, s: names.append(name))
    load_plugins()
    assert names, "the built-in plugins registered nothing"
    missing = sorted(n for n in set(names) if f"`{n}`" not in ARCH)
    assert not missing, f"job kinds / periodic tasks not in docs/ARCHITECTURE.md: {missing}"
