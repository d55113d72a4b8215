"""Generation-guard routes: check a prompt before generation, an image after it.

=========================  ========  ===============================================
route                      scope     does
=========================  ========  ===============================================
``POST /v1/guard/prompt``  scan      ``{"text", "account_id"?}`` -> the prompt result
``POST /v1/guard/image``   scan      multipart ``file`` (+ ``prompt`` text or
                                     ``prompt_result`` JSON, ``account_id``) -> the
                                     image result
``GET /v1/guard/phrases``  admin     the deployment's allow/deny phrase lists
                                     (``?kind=``, ``?language=``) and their version
``POST /v1/guard/phrases`` admin     ``{"kind", "language", "phrase", "note"?}``: add
                                     one (201: the entry and the new version)
``DELETE /v1/guard/        admin     remove one (the entry and the new version)
phrases/{id}``
=========================  ========  ===============================================

Phrase-list changes are audited with the calling key as actor (``guard.phrase.add`` /
``guard.phrase.remove``, :mod:`sentinelle.guard.phrases`) and reach every instance's
prompt guard within ``SENTINELLE_GUARD_PHRASES_TTL`` seconds (this one at once); the
``policy_id`` of each decision names the list version (``;phrases=v<N>``).

``account_id`` is the generation service's own id for its user (opaque to us, at most
200 characters). Every block is logged in the attempt log with it; an account that
crosses the escalation threshold is flagged for review
(:mod:`sentinelle.guard.attempts`). The response never says whether an account was
flagged -- the caller's user must not learn how close they are to a review.

``POST /v1/scan?guard=true`` (or a ``guard=true`` form field) also runs the image guard
on the scanned upload, without a prompt: :func:`scan_guard` gives its ``guard`` field.

Limits: prompts over ``SENTINELLE_GUARD_MAX_PROMPT_CHARS`` (10,000) -> 422
``prompt_too_long``; image uploads are capped at ``SENTINELLE_MAX_UPLOAD_BYTES``
while they stream in (413) and decoded under the media limits (422 for corrupt,
unsupported or bomb images). Images are read into memory, never written or logged.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from python_multipart.multipart import parse_options_header

from ..errors import MediaError, SentinelleError
from ..guard import phrases as phrase_lists
from ..guard.attempts import MAX_ACCOUNT_ID, AttemptLog, check_account_id
from ..guard.config import GuardConfig, GuardInputError
from ..guard.phrases import PhraseCache
from .auth import ApiKeyInfo, api_error
from .deps import StateDep, body_limit, require_scope
from .state import ServiceState
from .uploads import read_multipart_form, read_upload

router = APIRouter(prefix="/v1/guard", tags=["guard"])
body_limit(r"/v1/guard/image", "upload")

Scan = Annotated[ApiKeyInfo, Depends(require_scope("scan"))]
Admin = Annotated[ApiKeyInfo, Depends(require_scope("admin"))]

#: Text parts of the image upload (everything but ``file``) are capped at this.
MAX_FIELD_BYTES = 64 * 1024
TEXT_FIELDS = ("prompt", "prompt_result", "account_id")
MAX_PARTS = 8

IMAGE_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "prompt": {"type": "string", "description": "prompt that made it"},
                        "prompt_result": {
                            "type": "string",
                            "description": "the prompt guard's result JSON, instead of prompt",
                        },
                        "account_id": {"type": "string", "maxLength": MAX_ACCOUNT_ID},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@dataclass
class Guards:
    """The guard objects of one app, built on first use (models load lazily)."""

    config: GuardConfig
    prompt: Any  # sentinelle.guard.PromptGuard
    image: Any  # sentinelle.guard.image.ImageGuard
    attempts: AttemptLog
    phrases: PhraseCache

    def prompt_guard(self) -> Any:
        """The prompt guard with the deployment's current phrase lists."""
        return self.prompt.with_phrases(self.phrases.current())


_build_lock = threading.Lock()


def _guards(app: FastAPI, state: ServiceState) -> Guards:
    g = getattr(app.state, "sentinelle_guards", None)
    if g is not None:
        return g
    with _build_lock:
        g = getattr(app.state, "sentinelle_guards", None)
        if g is None:
            from ..guard import GuardPolicy, PromptGuard
            from ..guard.image import ImageGuard

            cfg = GuardConfig.from_env()
            g = Guards(
                config=cfg,
                prompt=PromptGuard(
                    GuardPolicy.from_env(), semantic=cfg.semantic, max_chars=cfg.max_prompt_chars
                ),
                image=ImageGuard(cfg, limits=state.settings.media_limits),
                attempts=AttemptLog(state.engine, cfg),
                phrases=PhraseCache(state.engine),
            )
            app.state.sentinelle_guards = g
    return g


def _input_error(e: SentinelleError) -> Exception:
    if isinstance(e, MediaError):
        return api_error(413 if e.code == "file_too_large" else 422, e.code, e.message)
    return api_error(422, e.code, e.message)


# ---------------------------------------------------------------- /v1/scan
#: Accepted spellings of the ``guard`` form field of ``/v1/scan``.
_FLAG_TRUE = frozenset({"1", "true", "yes", "on"})
_FLAG_FALSE = frozenset({"0", "false", "no", "off", ""})


def scan_guard_wanted(request: Request, query_flag: bool) -> bool:
    """Whether a ``/v1/scan`` call asked for the image guard: the ``guard`` query
    parameter (already parsed by FastAPI) or a ``guard`` multipart form field.

    Raises 422 ``bad_guard_flag`` for a form value that is not a boolean."""
    fields = getattr(request.state, "form_fields", None) or {}
    raw = fields.get("guard")
    if raw is None:
        return query_flag
    v = raw.strip().lower()
    if v not in _FLAG_TRUE | _FLAG_FALSE:
        raise api_error(422, "bad_guard_flag", "guard: expected true or false")
    return query_flag or v in _FLAG_TRUE


def scan_guard(
    request: Request, state: ServiceState, data: bytes, media_type: str | None
) -> dict[str, Any]:
    """The ``guard`` field of a ``/v1/scan?guard=true`` answer (blocking: run it in a
    thread): the image guard's result on ``data`` without a prompt (the
    ``/v1/guard/image`` body), ``{"skipped": "video", ...}`` for videos, or
    ``{"error": {"code", "message"}}`` when the guard cannot judge the bytes -- the
    scan's own answer (matches, actions) is never lost to the guard. Nothing is
    written to the attempt log: a scanned upload is not a generation attempt."""
    if media_type == "video":
        return {"skipped": "video", "reason": "the image guard checks images only"}
    g = _guards(request.app, state)
    try:
        return g.image.check(data).to_dict()
    except SentinelleError as e:
        return {"error": e.to_dict()}


# ------------------------------------------------------------------- prompt
class PromptRequest(BaseModel):
    text: str = Field(description="the prompt to check")
    account_id: str | None = Field(
        None, max_length=MAX_ACCOUNT_ID, description="the caller's id for its user"
    )


def _check_prompt(g: Guards, text: str, account_id: str | None) -> dict[str, Any]:
    account = check_account_id(account_id)
    r = g.prompt_guard().check(text)
    if r.decision == "block":
        g.attempts.record_prompt(r, account_id=account)
    return r.to_dict()


@router.post("/prompt", summary="Check a prompt before generation")
async def guard_prompt(
    body: PromptRequest, request: Request, state: StateDep, who: Scan
) -> dict[str, Any]:
    """Decision (`allow`, `review`, `block`), category scores, evidence (normalised
    spans, language), language and policy id. Blocks are logged with `account_id`."""
    g = _guards(request.app, state)
    try:
        return await run_in_threadpool(_check_prompt, g, body.text, body.account_id)
    except GuardInputError as e:
        raise _input_error(e) from None


# -------------------------------------------------------------------- image
async def _read_image_request(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """The image bytes and the text fields; a raw body has no fields."""
    ctype, _ = parse_options_header(request.headers.get("content-type"))
    if ctype.decode("latin-1").lower() != "multipart/form-data":
        return await read_upload(request, limit), {}
    return await read_multipart_form(
        request, limit, TEXT_FIELDS, field_limit=MAX_FIELD_BYTES, max_parts=MAX_PARTS
    )


def _check_image(g: Guards, data: bytes, fields: dict[str, str]) -> dict[str, Any]:
    account = check_account_id(fields.get("account_id"))
    prompt_text = fields.get("prompt")
    raw_result = fields.get("prompt_result")
    if prompt_text is not None and raw_result is not None:
        raise GuardInputError("send either 'prompt' or 'prompt_result', not both", "bad_request")
    prompt_result: Any = None
    if prompt_text is not None:
        prompt_result = g.prompt_guard().check(prompt_text)
    elif raw_result is not None:
        try:
            prompt_result = json.loads(raw_result)
        except ValueError:
            raise GuardInputError("prompt_result is not valid JSON", "bad_prompt_result") from None
        t = prompt_result.get("text") if isinstance(prompt_result, dict) else None
        prompt_text = t if isinstance(t, str) else None
    r = g.image.check(data, prompt_result=prompt_result)
    if r.decision == "block":
        g.attempts.record_image(r, account_id=account, prompt_text=prompt_text)
    return r.to_dict()


@router.post("/image", openapi_extra=IMAGE_OPENAPI, summary="Check a generated image")
async def guard_image(request: Request, state: StateDep, who: Scan) -> dict[str, Any]:
    """Explicit-content detection, faces and (if configured) apparent age, combined
    with the prompt's result. `checks_not_run` says which checks could not run and
    why; the decision is at least `review` when the explicit-content check could not."""
    g = _guards(request.app, state)
    data, fields = await _read_image_request(request, state.settings.max_upload_bytes)
    try:
        return await run_in_threadpool(_check_image, g, data, fields)
    except (GuardInputError, MediaError) as e:
        raise _input_error(e) from None


# ------------------------------------------------------------------ phrase lists
class PhraseRequest(BaseModel):
    kind: str = Field(description="allow | deny")
    language: str = Field(max_length=8, description="lexicon language code, or '*'")
    phrase: str = Field(max_length=phrase_lists.MAX_PHRASE * 4)
    note: str | None = Field(default=None, max_length=phrase_lists.MAX_NOTE)


def _phrase_error(e: GuardInputError) -> Exception:
    status = {"phrase_exists": 409, "phrase_not_found": 404}.get(e.code, 422)
    return api_error(status, e.code, e.message)


@router.get("/phrases", summary="The deployment's allow/deny phrase lists")
async def list_phrases(
    state: StateDep, who: Admin, kind: str | None = None, language: str | None = None
) -> dict[str, Any]:
    """Every stored phrase (normalised) with who added it and when, and the version."""
    try:
        rows = await run_in_threadpool(
            phrase_lists.list_entries, state.engine, kind=kind, language=language
        )
        version = await run_in_threadpool(phrase_lists.current_version, state.engine)
    except GuardInputError as e:
        raise _phrase_error(e) from None
    return {"version": version, "phrases": [r.to_dict() for r in rows]}


def _changed(request: Request, state: ServiceState) -> None:
    g = getattr(request.app.state, "sentinelle_guards", None)
    if g is not None:
        g.phrases.invalidate()


@router.post("/phrases", status_code=201, summary="Add a phrase to the allow or deny list")
async def add_phrase(
    body: PhraseRequest, request: Request, state: StateDep, who: Admin
) -> dict[str, Any]:
    """Stored normalised; audited; the new version goes into every later ``policy_id``."""
    try:
        entry, version = await run_in_threadpool(
            lambda: phrase_lists.add(
                state.engine,
                kind=body.kind,
                language=body.language,
                phrase=body.phrase,
                note=body.note,
                actor=who.actor,
            )
        )
    except GuardInputError as e:
        raise _phrase_error(e) from None
    _changed(request, state)
    return {"phrase": entry.to_dict(), "version": version}


@router.delete("/phrases/{entry_id}", summary="Remove a phrase from its list")
async def remove_phrase(
    entry_id: Annotated[int, Path(ge=1, le=2**53)], request: Request, state: StateDep, who: Admin
) -> dict[str, Any]:
    """Audited; returns the removed entry and the new version."""
    try:
        entry, version = await run_in_threadpool(
            lambda: phrase_lists.remove(state.engine, entry_id=entry_id, actor=who.actor)
        )
    except GuardInputError as e:
        raise _phrase_error(e) from None
    _changed(request, state)
    return {"phrase": entry.to_dict(), "version": version}
