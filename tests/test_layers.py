"""The import rule of ``docs/ARCHITECTURE.md``: the packages form layers, and none imports
a later one.

Read from the source with :mod:`ast` (nothing is imported): every ``import`` and
``from ... import`` in ``src/sentinelle``, at module level or inside a function (a lazy
import is still a dependency), ``if TYPE_CHECKING:`` blocks included. A new package must
be given its place in :data:`LAYERS` (and in the docs' layer list, see ``test_docs.py``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "sentinelle"

#: Low to high. A package may import itself and the packages before it, never one after.
#: ``plugins`` (the list of built-in extensions) and ``service`` / ``cli`` (which call
#: :func:`sentinelle.plugins.load_plugins`) are the composition roots.
LAYERS = (
    "errors",
    "media",
    "signals",
    "provenance",
    "formats",
    "index",
    "store",
    "audit",
    "banks",
    "jobs",
    "actions",
    "evidence",
    "review",
    "reports",
    "guard",
    "scan",
    "spark",
    "modelguard",
    "exchanges",
    "triage",
    "plugins",
    "service",
    "console",
    "cli",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """``(absolute module, line)`` for every in-repo import of one source file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend((a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
            # ``from . import x`` / ``from pkg import submodule`` name modules too
            out.extend(
                (f"{target}.{a.name}", node.lineno)
                for a in node.names
                if _is_module(f"{target}.{a.name}")
            )
    return [(t, line) for t, line in out if t == "sentinelle" or t.startswith("sentinelle.")]


def _is_module(dotted: str) -> bool:
    p = SRC.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def layer_of(module: str) -> str | None:
    """The top-level package (or module) of ``sentinelle.x.y``; None for the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def source_files() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "migrations" not in p.parts)


def package_edges() -> dict[tuple[str, str], list[str]]:
    """``(importer layer, imported layer) -> ["file:line module", ...]`` across packages."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in source_files():
        src = layer_of(module_name(path))
        for target, line in imported_modules(path):
            dst = layer_of(target)
            if src is None or dst is None or src == dst:
                continue
            edges[(src, dst)].append(f"{path.relative_to(SRC)}:{line} imports {target}")
    return edges


def test_every_package_has_a_layer() -> None:
    tops = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    tops |= {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(tops - set(LAYERS))
    assert not missing, f"give these packages a place in LAYERS and in the docs: {missing}"


def test_no_package_imports_a_later_layer() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = [
        f"{src} -> {dst}: {where}"
        for (src, dst), wheres in sorted(package_edges().items())
        if src in rank and dst in rank and rank[dst] > rank[src]
        for where in wheres
    ]
    assert not bad, "imports of a later layer:\n" + "\n".join(bad)


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in package_edges():
        graph[src].add(dst)
    cycles = _cycles(graph)
    assert not cycles, f"import cycles between packages: {cycles}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(set(graph) | {w for ws in graph.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    # the checks above are only as good as this
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_are_resolved() -> None:
    sub = PKG / "index" / "matcher.py"
    targets = {t for t, _ in imported_modules(sub)}
    assert "sentinelle.signals.hashcodec" in targets and "sentinelle.index.pdq_index" in targets


def test_builtin_plugins_import_and_register() -> None:
    import importlib

    from sentinelle.plugins import DEFAULT_PLUGINS

    for name in DEFAULT_PLUGINS:
        assert callable(getattr(importlib.import_module(name), "register", None)), name


def test_test_file_basenames_are_unique() -> None:
    """pytest imports test files by basename (rootdir mode, no packages): two ``test_x.py``
    in different folders collide on a clean checkout ("import file mismatch")."""
    tests = Path(__file__).resolve().parent
    seen: dict[str, list[str]] = defaultdict(list)
    for p in tests.rglob("test_*.py"):
        if "artifacts" not in p.parts:
            seen[p.name].append(str(p.relative_to(tests)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"rename these test files (tests/<pkg>/test_<pkg>_*.py): {clashes}"
