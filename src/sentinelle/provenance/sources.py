"""The registry of evidence sources, and the loop that runs them on one file.

A source is ``collect(data: bytes, ctx: SourceContext) -> list[Evidence]`` (see
:mod:`.evidence`). The built-in ones, in the order they run:

=============  ==============================================  ==========================
name           module                                          reads
=============  ==============================================  ==========================
``c2pa``       :mod:`sentinelle.provenance.c2pa_reader`        C2PA manifests (signed)
``metadata``   :mod:`sentinelle.provenance.metadata`           generator text chunks,
                                                               XMP/IPTC, EXIF Software
``watermark``  :mod:`sentinelle.provenance.watermark`          Stable Diffusion DWT-DCT
``camera``     :mod:`sentinelle.provenance.camera`             EXIF consistency, JPEG
                                                               quantisation tables
``detector``   :mod:`sentinelle.provenance.detector`           operator's ONNX model
=============  ==============================================  ==========================

A module that is not installed is skipped (the toolkit still works with fewer sources);
a source that raises is turned into an ``indicates="error"`` item, so one broken source
never hides the others. :func:`register_source` adds a plug-in source at run time.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .evidence import Evidence, SourceContext

log = logging.getLogger("sentinelle.provenance")

Collector = Callable[[bytes, SourceContext], list[Evidence]]


@dataclass(frozen=True)
class Source:
    """A named source: where its ``collect`` lives, or the function itself."""

    name: str
    module: str | None = None
    func: Collector | None = None


BUILTIN_SOURCES: tuple[Source, ...] = (
    Source("c2pa", "sentinelle.provenance.c2pa_reader"),
    Source("metadata", "sentinelle.provenance.metadata"),
    Source("watermark", "sentinelle.provenance.watermark"),
    Source("camera", "sentinelle.provenance.camera"),
    Source("detector", "sentinelle.provenance.detector"),
)

_registry: dict[str, Source] = {s.name: s for s in BUILTIN_SOURCES}
_resolved: dict[str, Collector | None] = {}


def register_source(name: str, func: Collector) -> None:
    """Add (or replace) a source; it runs after the built-in ones."""
    _registry[name] = Source(name, func=func)
    _resolved.pop(name, None)


def unregister_source(name: str) -> None:
    """Remove a plug-in source (built-in sources cannot be removed)."""
    if name not in {s.name for s in BUILTIN_SOURCES}:
        _registry.pop(name, None)
        _resolved.pop(name, None)


def source_names() -> list[str]:
    """Every registered source name, in run order."""
    return list(_registry)


def resolve(name: str) -> Collector | None:
    """The ``collect`` function of a source, or None when its module is not installed."""
    if name in _resolved:
        return _resolved[name]
    src = _registry.get(name)
    fn: Collector | None = None
    if src is not None and src.func is not None:
        fn = src.func
    elif src is not None and src.module:
        try:
            mod = importlib.import_module(src.module)
        except ModuleNotFoundError as e:
            if e.name != src.module:
                raise
            mod = None
        fn = getattr(mod, "collect", None) if mod is not None else None
    _resolved[name] = fn
    return fn


def available_sources() -> list[str]:
    """Names of the sources that can run here (their modules import)."""
    out = []
    for name in _registry:
        try:
            if resolve(name) is not None:
                out.append(name)
        except Exception:  # noqa: BLE001 - a broken module is reported when it runs
            out.append(name)
    return out


def run_source(name: str, data: bytes, ctx: SourceContext) -> list[Evidence]:
    """Run one source; any exception becomes an error item (never propagates)."""
    try:
        fn = resolve(name)
    except Exception as e:  # noqa: BLE001
        return [Evidence.error(name, "source_unavailable", f"{name} source failed to load: {e}")]
    if fn is None:
        return []
    try:
        items = fn(data, ctx)
    except Exception as e:  # noqa: BLE001 - a source bug must not break the verdict
        log.warning("provenance source %s failed: %s", name, type(e).__name__)
        return [
            Evidence.error(
                name, "source_failed", f"{name} source failed: {type(e).__name__}: {e}"[:300]
            )
        ]
    return [it for it in items or [] if isinstance(it, Evidence)]


def collect_all(
    data: bytes, ctx: SourceContext, names: Iterable[str] | None = None
) -> list[Evidence]:
    """Run the chosen sources (default: all registered) in order and concatenate."""
    chosen = list(names) if names is not None else source_names()
    unknown = [n for n in chosen if n not in _registry]
    if unknown:
        from .errors import ProvenanceError

        raise ProvenanceError(
            f"unknown provenance source {', '.join(unknown)}; "
            f"choose from {', '.join(source_names())}",
            "unknown_source",
        )
    items: list[Evidence] = []
    for name in chosen:
        items.extend(run_source(name, data, ctx))
    return items
