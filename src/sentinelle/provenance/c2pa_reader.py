"""C2PA evidence: read every manifest (ingredients included) with ``c2pa-python``, offline.

What the reader reports, per file:

* **Claims.** For every manifest reachable from the active one (through its ingredients),
  each action's ``digitalSourceType`` (IPTC vocabulary):

  ======================================  ==========================================
  ``trainedAlgorithmicMedia``             generative AI made it (``ai_generated``)
  ``compositeWithTrainedAlgorithmicMedia`` generative AI edited/composited it
                                          (``ai_edited``)
  ``digitalCapture`` /                    a camera captured it (``camera``)
  ``computationalCapture``
  ``algorithmicMedia``                    procedural (fractals, test renders): **not**
                                          generative AI; informational only
  ======================================  ==========================================

  Where the claim sits matters: a ``c2pa.created`` + ``trainedAlgorithmicMedia`` claim in
  the active manifest or in a chain of ``parentOf`` ingredients means the asset *derives
  from* a generated image (OpenAI files put the generator's claim in the parent
  ingredient) -> ``ai_generated``; the same claim in a ``componentOf`` ingredient means a
  generated *part* was placed into the asset -> ``ai_edited``.

* **Validation**, kept in three separate buckets (see :data:`TAMPER_CODES`):
  tampering (data/box/BMFF hash, claim signature or hashed-URI mismatch: the bytes or the
  manifest changed after signing), credential problems (untrusted, expired, revoked
  signer: the claim is intact but the signer is unknown), and other failures.
  The strength of a claim follows from its manifest's validation: trusted signer and
  intact -> ``strong``; intact but untrusted -> ``moderate`` (anyone can make a
  certificate); tampered -> ``weak``.

* **Remote manifests** (the file only points at a URL) are reported as such; nothing is
  fetched (``verify.remote_manifest_fetch`` and ``verify.ocsp_fetch`` are off).

* **Errors** (unsupported format, malformed or truncated JUMBF, oversized input) become an
  ``indicates="error"`` item; the native library only ever sees inputs under the size cap.

* **Isolation.** The native reader runs in a reusable worker process with a deadline
  (:mod:`.c2pa_isolation`): a read that hangs is killed and reported as a ``c2pa_timeout``
  error item, a worker that dies as ``c2pa_crashed``; the next read gets a fresh worker.
"""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .evidence import Evidence, SourceContext

SOURCE = "c2pa"

IPTC_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"

AI_GENERATED_TYPES = frozenset({"trainedAlgorithmicMedia"})
AI_EDITED_TYPES = frozenset({"compositeWithTrainedAlgorithmicMedia"})
CAMERA_TYPES = frozenset({"digitalCapture", "computationalCapture"})
NOT_AI_TYPES = frozenset({"algorithmicMedia"})

TAMPER_CODES = frozenset(
    {
        "assertion.dataHash.mismatch",
        "assertion.boxesHash.mismatch",
        "assertion.bmffHash.mismatch",
        "assertion.collectionHash.mismatch",
        "assertion.hashedURI.mismatch",
        "claimSignature.mismatch",
        "ingredient.hashedURI.mismatch",
        "ingredient.claimSignature.mismatch",
        "ingredient.manifest.mismatch",
    }
)
"""Validation codes meaning the asset or its manifest changed after signing."""

CREDENTIAL_PREFIXES = ("signingCredential.", "timeStamp.", "claimSignature.outsideValidity")
"""Validation codes about the signer's certificate or time stamp, not the content."""

MAX_MANIFEST_JSON = 16 * 1024 * 1024
"""Refuse to parse manifest JSON larger than this (a hostile file can inflate it)."""

_LABEL_RE = re.compile(r"/c2pa/([^/]+)")


def short_type(dst: str | None) -> str | None:
    """``http://cv.iptc.org/.../trainedAlgorithmicMedia`` -> ``trainedAlgorithmicMedia``."""
    if not dst or not isinstance(dst, str):
        return None
    return dst.rsplit("/", 1)[-1]


def _agent_name(agent: Any) -> str | None:
    """``softwareAgent`` is a string (claim v1) or ``{"name", "version"}`` (claim v2)."""
    if isinstance(agent, str):
        return agent[:200]
    if isinstance(agent, dict) and agent.get("name"):
        version = agent.get("version")
        return f"{agent['name']} {version}"[:200] if version else str(agent["name"])[:200]
    return None


def _generator(manifest: dict) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict) and info[0].get("name"):
        first = info[0]
        return f"{first['name']} {first.get('version') or ''}".strip()[:200]
    gen = manifest.get("claim_generator")
    return str(gen)[:200] if gen else None


def _signer(manifest: dict) -> dict[str, Any]:
    sig = manifest.get("signature_info") or {}
    return {
        k: sig.get(k)
        for k in ("common_name", "issuer", "alg", "time", "cert_serial_number")
        if sig.get(k) is not None
    }


def _signer_text(signer: dict[str, Any]) -> str:
    name = signer.get("common_name") or "unknown signer"
    issuer = signer.get("issuer")
    return f"{name} ({issuer})" if issuer and issuer != name else str(name)


def _actions(manifest: dict) -> list[dict[str, Any]]:
    """Flatten every ``c2pa.actions`` / ``c2pa.actions.v2`` assertion of a manifest."""
    out: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict):
            continue
        label = str(assertion.get("label", ""))
        if not label.startswith("c2pa.actions"):
            continue
        data = assertion.get("data") or {}
        for act in data.get("actions") or [] if isinstance(data, dict) else []:
            if not isinstance(act, dict):
                continue
            out.append(
                {
                    "action": str(act.get("action", ""))[:100],
                    "digitalSourceType": short_type(act.get("digitalSourceType")),
                    "softwareAgent": _agent_name(act.get("softwareAgent")),
                }
            )
    return out


@dataclass
class _ManifestView:
    """One manifest as reached from the active one."""

    label: str
    role: str  # "active" | "parent" | "component" | "ingredient" (other relationships)
    path: list[str]  # relationships from the active manifest, e.g. ["parentOf"]
    generator: str | None
    signer: dict[str, Any]
    actions: list[dict[str, Any]]
    success: set[str] = field(default_factory=set)
    failures: set[str] = field(default_factory=set)

    @property
    def tamper_codes(self) -> list[str]:
        return sorted(c for c in self.failures if c in TAMPER_CODES)

    @property
    def credential_codes(self) -> list[str]:
        return sorted(c for c in self.failures if c.startswith(CREDENTIAL_PREFIXES))

    @property
    def other_codes(self) -> list[str]:
        return sorted(
            c
            for c in self.failures
            if c not in TAMPER_CODES and not c.startswith(CREDENTIAL_PREFIXES)
        )

    @property
    def trusted(self) -> bool:
        return "signingCredential.trusted" in self.success and not self.credential_codes

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "role": self.role,
            "path": self.path,
            "claim_generator": self.generator,
            "signer": self.signer,
            "trusted": self.trusted,
            "actions": self.actions,
            "tamper_codes": self.tamper_codes,
            "credential_codes": self.credential_codes,
            "other_failures": self.other_codes,
        }


def _label_of(url: Any) -> str | None:
    m = _LABEL_RE.search(str(url or ""))
    return m.group(1) if m else None


def _statuses(store: dict) -> list[tuple[str, str, str | None]]:
    """All validation entries as ``(kind, code, manifest label)``; kind: success|failure."""
    out: list[tuple[str, str, str | None]] = []
    results = store.get("validation_results")
    if isinstance(results, dict):
        groups: list[dict] = []
        if isinstance(results.get("activeManifest"), dict):
            groups.append(results["activeManifest"])
        for delta in results.get("ingredientDeltas") or []:
            if isinstance(delta, dict) and isinstance(delta.get("validationDeltas"), dict):
                groups.append(delta["validationDeltas"])
        for g in groups:
            for kind in ("success", "informational", "failure"):
                for st in g.get(kind) or []:
                    if isinstance(st, dict) and st.get("code"):
                        k = "failure" if kind == "failure" else "success"
                        out.append((k, str(st["code"]), _label_of(st.get("url"))))
    for st in store.get("validation_status") or []:  # older stores / failures only
        if isinstance(st, dict) and st.get("code"):
            out.append(("failure", str(st["code"]), _label_of(st.get("url"))))
    return out


def _walk(store: dict) -> list[_ManifestView]:
    """Manifests reachable from the active one, breadth first, each once (cycles safe)."""
    manifests = store.get("manifests") or {}
    active = store.get("active_manifest")
    if not isinstance(manifests, dict) or active not in manifests:
        return []
    views: dict[str, _ManifestView] = {}
    queue: list[tuple[str, list[str]]] = [(active, [])]
    while queue:
        label, path = queue.pop(0)
        if label in views or label not in manifests or len(views) > 256:
            continue
        m = manifests[label] if isinstance(manifests[label], dict) else {}
        if not path:
            role = "active"
        elif "componentOf" in path:
            role = "component"
        elif all(r == "parentOf" for r in path):
            role = "parent"
        else:
            role = "ingredient"
        views[label] = _ManifestView(
            label=label,
            role=role,
            path=path,
            generator=_generator(m),
            signer=_signer(m),
            actions=_actions(m),
        )
        for ing in m.get("ingredients") or []:
            if not isinstance(ing, dict):
                continue
            child = ing.get("active_manifest")
            rel = str(ing.get("relationship") or "componentOf")
            if isinstance(child, str):
                queue.append((child, [*path, rel]))
    return list(views.values())


def _attach_statuses(views: list[_ManifestView], store: dict) -> None:
    by_label = {v.label: v for v in views}
    active = views[0] if views else None
    for kind, code, label in _statuses(store):
        view = by_label.get(label or "", active)
        if view is None:
            continue
        (view.failures if kind == "failure" else view.success).add(code)
    # ingredient-recorded failures
    manifests = store.get("manifests") or {}
    for v in views:
        m = manifests.get(v.label) if isinstance(manifests, dict) else None
        for ing in (m or {}).get("ingredients") or []:
            if not isinstance(ing, dict):
                continue
            child = by_label.get(str(ing.get("active_manifest")))
            for st in ing.get("validation_status") or []:
                if isinstance(st, dict) and st.get("code") and child is not None:
                    child.failures.add(str(st["code"]))


# --- the c2pa-python context (offline; trust anchors per PEM bundle) -----------------

_contexts: dict[str, Any] = {}
_contexts_lock = threading.Lock()


def c2pa_settings(trust_anchors_pem: str | None) -> dict[str, Any]:
    """The c2pa-rs settings we read with: offline, trust checked against the operator's PEM."""
    settings: dict[str, Any] = {
        "verify": {
            "verify_after_reading": True,
            "verify_trust": True,
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
        },
    }
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    return settings


def _context(trust_anchors_pem: str | None) -> Any:
    import c2pa

    key = trust_anchors_pem or ""
    with _contexts_lock:
        ctx = _contexts.get(key)
        if ctx is None:
            if len(_contexts) >= 8:
                _contexts.clear()
            ctx = c2pa.Context.from_dict(c2pa_settings(trust_anchors_pem))
            _contexts[key] = ctx
        return ctx


def read_store_json(data: bytes, trust_anchors_pem: str | None = None) -> str | None:
    """The manifest store JSON (``Reader.json()``) read in this process; None: no manifest.

    Raises ``c2pa.C2paError`` (remote manifest, unsupported type, malformed data...) and
    ``ValueError`` for JSON over :data:`MAX_MANIFEST_JSON`. This is what the isolated worker
    (:mod:`.c2pa_worker`) runs.
    """
    import c2pa

    reader = c2pa.Reader.try_create(None, io.BytesIO(data), None, _context(trust_anchors_pem))
    if reader is None:
        return None
    with reader:
        text = reader.json()
    if len(text) > MAX_MANIFEST_JSON:
        raise ValueError(f"manifest JSON is {len(text)} bytes, over {MAX_MANIFEST_JSON}")
    return text


def _parse_store(text: str | None) -> dict | None:
    if text is None:
        return None
    store = json.loads(text)
    return store if isinstance(store, dict) else None


def read_store(
    data: bytes,
    trust_anchors_pem: str | None = None,
    *,
    isolated: bool | None = None,
    timeout_s: float | None = None,
) -> dict | None:
    """The manifest store as a dict, None when the file has none.

    By default the native reader runs in a worker process with a deadline
    (:mod:`.c2pa_isolation`; ``SENTINELLE_C2PA_ISOLATION=0`` or ``isolated=False`` reads in
    this process). Raises ``c2pa.C2paError`` in-process, and ``ReaderFailed`` /
    ``ReaderTimeout`` / ``ReaderCrashed`` from the worker.
    """
    from . import c2pa_isolation

    if isolated is None:
        isolated = c2pa_isolation.isolation_enabled()
    if not isolated:
        return _parse_store(read_store_json(data, trust_anchors_pem))
    return _parse_store(c2pa_isolation.read_isolated(data, trust_anchors_pem, timeout_s))


# --- evidence -------------------------------------------------------------------------


def _claim_strength(view: _ManifestView) -> str:
    if view.tamper_codes:
        return "weak"
    return "strong" if view.trusted else "moderate"


def _claim_items(views: list[_ManifestView]) -> list[Evidence]:
    items: list[Evidence] = []
    seen: set[tuple[str, str, str]] = set()
    for v in views:
        for act in v.actions:
            dst = act["digitalSourceType"]
            if not dst:
                continue
            if dst in AI_GENERATED_TYPES:
                indicates = "ai_generated" if v.role in ("active", "parent") else "ai_edited"
            elif dst in AI_EDITED_TYPES:
                indicates = "ai_edited"
            elif dst in CAMERA_TYPES:
                if v.role not in ("active", "parent"):
                    continue  # a camera photo placed into a composite says little
                indicates = "camera"
            else:
                indicates = "none"
            key = (v.label, dst, act["action"])
            if key in seen:
                continue
            seen.add(key)
            where = "active manifest" if v.role == "active" else f"{v.role} ingredient manifest"
            agent = f", softwareAgent {act['softwareAgent']}" if act["softwareAgent"] else ""
            note = ""
            if dst in NOT_AI_TYPES:
                note = " (procedural media, not generative AI)"
            elif v.tamper_codes:
                note = " - manifest failed integrity checks, claim unreliable"
            elif not v.trusted:
                note = " - signer not in the trust anchors"
            items.append(
                Evidence(
                    source=SOURCE,
                    finding=(
                        f"{where}: {act['action']} with digitalSourceType {dst}{agent}; "
                        f"signed by {_signer_text(v.signer)}{note}"
                    ),
                    strength="weak" if indicates == "none" else _claim_strength(v),  # type: ignore[arg-type]
                    indicates=indicates,  # type: ignore[arg-type]
                    forgeable=not v.trusted,
                    strippable=True,
                    details={
                        "manifest": v.label,
                        "role": v.role,
                        "action": act["action"],
                        "digital_source_type": dst,
                        "software_agent": act["softwareAgent"],
                        "claim_generator": v.generator,
                        "signer": v.signer,
                        "trusted": v.trusted,
                        "tampered": bool(v.tamper_codes),
                    },
                )
            )
    return items


def _validation_items(views: list[_ManifestView], state: str | None) -> list[Evidence]:
    items: list[Evidence] = []
    for v in views:
        if v.tamper_codes:
            if v.role == "active":
                scope = "the file's active manifest"
                tail = "content or manifest changed after signing"
            else:
                scope = f"a {'/'.join(v.path)} ingredient"
                tail = (
                    "that ingredient's content or manifest changed after it was signed, so "
                    "the chain of claims the file inherits through it cannot be relied on"
                )
            items.append(
                Evidence(
                    source=SOURCE,
                    finding=(
                        f"tampering: {scope} fails integrity checks "
                        f"({', '.join(v.tamper_codes)}): {tail}"
                    ),
                    # Strong wherever it sits: a broken ingredient means part of the file's
                    # provenance history was altered, even if the outer manifest is intact.
                    strength="strong",
                    indicates="tampered",
                    forgeable=False,
                    strippable=True,
                    details={
                        "manifest": v.label,
                        "role": v.role,
                        "path": v.path,
                        "codes": v.tamper_codes,
                        "validation_state": state,
                    },
                )
            )
    return items


def _summary_item(views: list[_ManifestView], store: dict) -> Evidence:
    active = views[0]
    state = store.get("validation_state")
    creds = sorted({c for v in views for c in v.credential_codes})
    trust = "trusted signer" if active.trusted else "signer not trusted"
    return Evidence(
        source=SOURCE,
        finding=(
            f"C2PA manifest store: {len(views)} manifest(s), validation {state or 'unknown'}, "
            f"active manifest by {active.generator or 'unknown generator'} signed by "
            f"{_signer_text(active.signer)} ({trust})"
        ),
        strength="weak",
        indicates="none",
        forgeable=not active.trusted,
        strippable=True,
        details={
            "validation_state": state,
            "active_manifest": active.label,
            "trusted": active.trusted,
            "credential_codes": creds,
            "manifests": [v.summary() for v in views],
        },
    )


def evidence_from_store(store: dict) -> list[Evidence]:
    """Evidence items for a parsed manifest store (the JSON of ``Reader.json()``)."""
    views = _walk(store)
    if not views:
        return [
            Evidence.error(
                SOURCE,
                "c2pa_malformed",
                "C2PA manifest store has no readable active manifest",
            )
        ]
    _attach_statuses(views, store)
    state = store.get("validation_state")
    return [
        _summary_item(views, store),
        *_validation_items(views, state),
        *_claim_items(views),
    ]


_REMOTE_RE = re.compile(r"(https?://\S+)")


def _error_item(err: Exception) -> Evidence:
    """Map a c2pa failure to an evidence item; a remote manifest is *not* an error."""
    import c2pa

    from .c2pa_isolation import ReaderCrashed, ReaderFailed, ReaderTimeout

    if isinstance(err, ReaderTimeout):
        return Evidence.error(
            SOURCE,
            "c2pa_timeout",
            f"C2PA reader gave no answer in time ({err}); its worker process was killed",
        )
    if isinstance(err, ReaderCrashed):
        return Evidence.error(SOURCE, "c2pa_crashed", f"C2PA reader crashed: {err}"[:300])
    if isinstance(err, ReaderFailed):
        msg, name, is_c2pa = err.message[:300], err.type, err.is_c2pa
    else:
        msg, name, is_c2pa = str(err)[:300], type(err).__name__, isinstance(err, c2pa.C2paError)
    if msg.startswith("Remote:") or "RemoteManifest" in name:
        m = _REMOTE_RE.search(msg)
        url = m.group(1) if m else None
        return Evidence(
            source=SOURCE,
            finding=f"C2PA manifest is stored remotely at {url or 'an external URL'} "
            "(not fetched: provenance runs offline)",
            strength="weak",
            indicates="none",
            forgeable=True,
            strippable=True,
            details={"remote_url": url, "fetched": False},
        )
    if "NotSupported" in name or msg.startswith("NotSupported"):
        return Evidence.error(SOURCE, "c2pa_unsupported_format", f"C2PA: {msg}")
    if is_c2pa:
        return Evidence.error(SOURCE, "c2pa_malformed", f"C2PA manifest unreadable: {msg}")
    return Evidence.error(SOURCE, "c2pa_failed", f"C2PA reader failed: {name}: {msg}")


NO_MANIFEST_TYPES = frozenset(("image/jpeg", "image/png"))
"""Types for which the native reader answers "no manifest" (not "unsupported") when
the file holds no C2PA data: :func:`_surely_unsigned` may answer for it."""

_C2PA_MARKS = (b"jumb", b"c2pa", b"provenance")


def _jpeg_header_end(data: bytes) -> int | None:
    """Where the entropy-coded data of a single-scan sequential JPEG begins (the end of
    its one SOS segment), or None (another kind of JPEG, or damaged headers).

    Such a file has nothing but entropy-coded data and the EOI marker after that
    point, so every APP segment (APP11 JUMBF, APP1 XMP) lies before it."""
    pos, n, frame_components = 2, len(data), 0
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if marker in (0xC0, 0xC1):
            frame_components = data[pos + 9] if pos + 9 < n else 0
        elif 0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return None  # progressive, lossless, arithmetic: several scans may follow
        elif marker == 0xDA:
            scan_components = data[pos + 4] if pos + 4 < n else -1
            if not frame_components or scan_components != frame_components:
                return None
            return pos + 2 + length
        pos += 2 + length
    return None


def _surely_unsigned(data: bytes, media_type: str | None) -> bool:
    """True when ``data`` (of ``media_type``; None: detected here) cannot hold a C2PA
    manifest, embedded or referenced.

    An embedded manifest store is a JUMBF superbox (box type ``jumb``, labelled
    ``c2pa``: JPEG APP11, PNG caBX); a remote one is referenced from XMP
    (``dcterms:provenance``). A file with none of these bytes has no manifest to
    find, so the native reader (a round trip to its worker process that copies the
    whole file: 3-10 ms for a 12 MP JPEG) is not asked. A single-scan JPEG is
    searched up to its scan data only (an APP segment after the scan is not a
    conformant placement; searching 4 MB of scan data cost 2.5 ms a mark); any other
    JPEG or PNG everywhere. A stray match only means the reader is asked, as before.
    """
    if media_type is None:
        from ..media.detect import HEAD_BYTES, detect

        found = detect(data[:HEAD_BYTES])
        media_type = f"{found[0]}/{found[1]}" if found else None
    if media_type not in NO_MANIFEST_TYPES:
        return False
    region = data
    if media_type == "image/jpeg":
        end = _jpeg_header_end(data)
        if end is not None:
            region = data[:end]
    return not any(mark in region for mark in _C2PA_MARKS)


def collect(data: bytes, ctx: SourceContext) -> list[Evidence]:
    """The C2PA evidence source (registered in :mod:`.sources`)."""
    if len(data) > ctx.max_bytes:
        return [
            Evidence.error(
                SOURCE,
                "too_large",
                f"file is {len(data)} bytes, over the C2PA reading cap of {ctx.max_bytes}",
            )
        ]
    try:
        if _surely_unsigned(data, ctx.media_type):
            store = None
        else:
            timeout = ctx.options.get("c2pa_timeout_s")
            store = read_store(data, ctx.trust_anchors_pem, timeout_s=timeout)
    except Exception as e:  # noqa: BLE001 - native/parse failures become an error item
        return [_error_item(e)]
    if store is None:
        return [
            Evidence(
                source=SOURCE,
                finding="no C2PA manifest",
                strength="weak",
                indicates="none",
                forgeable=False,
                strippable=True,
                details={},
            )
        ]
    return evidence_from_store(store)
