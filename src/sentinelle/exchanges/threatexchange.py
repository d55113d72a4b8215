"""Meta ThreatExchange (Graph API): ``threat_updates`` of one privacy group, descriptors, reactions.

Wire facts (``../shared/notes/exchanges.md`` section 3; Meta's threat_updates docs):

* ``GET {base}/{privacy_group}/threat_updates/?access_token=&limit=&fields=&start_time=``
  returns ``{"data": [...], "paging": {"next": "<absolute URL>"}}``, ordered by
  ``last_updated``. Each update: ``id, indicator, type, last_updated,
  should_delete, descriptors{data: [{id, owner{id}, status, tags{data:[{text}]},
  reactions}]}``. A 500 means threat_updates is not enabled for the group.
* Auth: an app token ``<app_id>|<secret>`` as the ``access_token`` query parameter.
* Reactions: ``POST {base}/{descriptor_id}?access_token=&reactions=HELPFUL|NOT_HELPFUL``.

Choices:

* The ``next`` link carries the access token, so the checkpoint stores it
  **without** ``access_token`` (re-added per request), and a ``next`` pointing to
  another host than the configured one is refused (the token would leak).
* Deletion = ``should_delete``, or no ``descriptors`` (pytx #834), or no descriptor
  with a visible owner (visibility oscillates; pytx drops owner-less ones).
* ``HASH_PDQ`` -> ``pdq``; ``HASH_MD5`` / ``HASH_VIDEO_MD5`` -> ``md5``;
  ``HASH_SHA256`` / ``HASH_VIDEO_SHA256`` -> ``sha256``; others are unknown.
* Meta keeps deletion events 90 days: a checkpoint older than 85 days stops with
  ``stale_checkpoint`` (re-read everything with ``sentinelle exchange reset``)
  instead of silently missing deletions.
* Descriptor ids are kept as tags ``te_descriptor:<id>`` so feedback can react to them.
* Submission: ``POST {base}/threat_descriptors`` (form fields ``indicator, type,
  description, share_level, status, privacy_type=HAS_PRIVACY_GROUP,
  privacy_members=<group>, tags``; the token stays in the query string), one
  descriptor per hash, answered ``{"success": true, "id": ...}``. PDQ, MD5 and
  SHA-256 are submitted; other types are skipped and not counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .api import (
    RESUME_OVERLAP_S,
    AuthError,
    ExchangeAPI,
    ExchangeConfig,
    ExchangeError,
    ExchangeRecord,
    FetchPage,
    MalformedPage,
    Signal,
    StoredRecord,
)

INDICATOR_TYPES: dict[str, str | None] = {
    "HASH_PDQ": "pdq",
    "HASH_MD5": "md5",
    "HASH_VIDEO_MD5": "md5",
    "HASH_SHA256": "sha256",
    "HASH_VIDEO_SHA256": "sha256",
}
FIELDS = "indicator,type,last_updated,should_delete,descriptors{id,reactions,owner{id},tags,status}"
STALE_S = 85 * 86400
REACTIONS = {"confirm": "HELPFUL", "reject": "NOT_HELPFUL"}
DESCRIPTOR_TAG = "te_descriptor:"


#: Sentinelle signal type -> ThreatExchange indicator type for submissions.
SUBMIT_TYPES = {"pdq": "HASH_PDQ", "md5": "HASH_MD5", "sha256": "HASH_SHA256"}
SHARE_LEVELS = ("WHITE", "GREEN", "AMBER", "RED")
STATUSES = ("MALICIOUS", "SUSPICIOUS", "NON_MALICIOUS", "UNKNOWN")


@dataclass
class ThreatExchangeConfig(ExchangeConfig):
    environment: str = "production"
    privacy_group: str = ""
    page_size: int = 500
    #: Descriptors we submit: visible to the privacy group only, with these fields.
    submit_share_level: str = "AMBER"
    submit_status: str = "MALICIOUS"
    submit_tags: str = ""  # comma-separated ThreatExchange tag names
    submit_description: str = "Shared by a Sentinelle instance after human review"


class ThreatExchangeExchange(ExchangeAPI):
    type_name: ClassVar[str] = "threatexchange"
    description: ClassVar[str] = "Meta ThreatExchange threat_updates of one privacy group"
    config_cls: ClassVar[type[ExchangeConfig]] = ThreatExchangeConfig
    credential_format: ClassVar[str] = "app_id|app_secret"
    supports_feedback: ClassVar[bool] = True
    supports_submit: ClassVar[bool] = True
    environments: ClassVar[dict[str, str]] = {"production": "https://graph.facebook.com/v21.0"}
    config: ThreatExchangeConfig

    def __init__(self, config: ExchangeConfig, credentials: Any, http: Any) -> None:
        super().__init__(config, credentials, http)
        if not self.config.privacy_group.isdigit():
            raise ExchangeError("threatexchange needs a numeric privacy_group", "bad_config")
        self.base = ThreatExchangeExchange.base_url(self.config, self.config.environment)

    @classmethod
    def parse_credentials(cls, secret: str) -> str:
        app, sep, key = secret.strip().partition("|")
        if not sep or not app.isdigit() or len(key) < 8:
            raise AuthError("ThreatExchange token must be 'app_id|app_secret'", "bad_credentials")
        return secret.strip()

    def _token(self) -> str:
        if not self.credentials:
            raise AuthError("ThreatExchange has no access token configured", "missing_credentials")
        return str(self.credentials)

    def _with_token(self, url: str) -> str:
        parts = urlsplit(url)
        q = [
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"
        ]
        q.append(("access_token", self._token()))
        return urlunsplit(parts._replace(query=urlencode(q)))

    @staticmethod
    def _without_token(url: str) -> str:
        parts = urlsplit(url)
        q = [
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"
        ]
        return urlunsplit(parts._replace(query=urlencode(q)))

    def _same_host(self, url: str) -> bool:
        a, b = urlsplit(url), urlsplit(self.base)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    # ---------------------------------------------------------------- fetch
    def fetch(self, checkpoint: dict[str, Any] | None) -> Iterator[FetchPage]:
        cp = dict(checkpoint or {})
        now = time.time()
        if cp.get("fetched_at") and now - float(cp["fetched_at"]) > STALE_S:
            raise ExchangeError(
                "checkpoint older than 85 days: ThreatExchange has forgotten deletions since; "
                "re-read with `sentinelle exchange reset`",
                "stale_checkpoint",
            )
        start = cp.get("update_time")
        high = int(cp.get("max_seen") or start or 0)
        nxt = cp.get("next")
        while True:
            if nxt:
                if not self._same_host(nxt):
                    raise MalformedPage(
                        "ThreatExchange next link points to another host", b"", "bad_next"
                    )
                url = self._with_token(nxt)
            else:
                q: dict[str, Any] = {"limit": self.config.page_size, "fields": FIELDS}
                if start is not None:
                    q["start_time"] = int(start)
                url = self._with_token(
                    f"{self.base}/{self.config.privacy_group}/threat_updates/?{urlencode(q)}"
                )
            resp = self.http.get(url)
            resp.require_type("application/json", "text/javascript")
            try:
                doc = json.loads(resp.body)
            except ValueError as e:
                raise MalformedPage(
                    f"ThreatExchange: invalid JSON ({e})", resp.body, "bad_json"
                ) from None
            data = doc.get("data") if isinstance(doc, dict) else None
            if not isinstance(data, list):
                raise MalformedPage("ThreatExchange: no data list", resp.body, "bad_json")
            records, bad = [], 0
            for raw in data:
                rec = self._record(raw)
                if rec is None:
                    bad += 1
                    continue
                records.append(rec)
                high = max(high, int(raw.get("last_updated") or 0))
            paging = doc.get("paging") if isinstance(doc.get("paging"), dict) else {}
            link = paging.get("next") if isinstance(paging.get("next"), str) else None
            if link:
                cp = {
                    "update_time": start,
                    "next": self._without_token(link),
                    "max_seen": high,
                    "fetched_at": now,
                }
            else:
                cp = {
                    "update_time": high or start,
                    "next": None,
                    "max_seen": high,
                    "fetched_at": now,
                }
            yield FetchPage(
                records, cp, progress_at=float(high) if high else None, malformed_records=bad
            )
            if not link:
                return
            nxt = link

    @staticmethod
    def _record(raw: Any) -> ExchangeRecord | None:
        if not isinstance(raw, dict):
            return None
        indicator, itype = raw.get("indicator"), raw.get("type")
        try:
            int(raw.get("last_updated"))
        except (TypeError, ValueError):
            return None
        if not isinstance(indicator, str) or not isinstance(itype, str) or len(indicator) > 512:
            return None
        key = f"{itype}:{indicator}"
        descs = raw.get("descriptors")
        items = descs.get("data") if isinstance(descs, dict) else None
        visible = [
            d
            for d in (items or [])
            if isinstance(d, dict) and isinstance(d.get("owner"), dict) and d["owner"].get("id")
        ]
        if raw.get("should_delete") or not visible:
            return ExchangeRecord(key=key, deleted=True)
        tags: set[str] = set()
        statuses = []
        for d in visible:
            statuses.append(str(d.get("status") or "UNKNOWN"))
            tag_list = d.get("tags", {}).get("data", []) if isinstance(d.get("tags"), dict) else []
            tags.update(str(t.get("text"))[:64] for t in tag_list if isinstance(t, dict))
            tags.add(f"{DESCRIPTOR_TAG}{d.get('id')}")
        owners = sorted({str(d["owner"]["id"]) for d in visible})
        category = "MALICIOUS" if "MALICIOUS" in statuses else statuses[0]
        return ExchangeRecord(
            key=key,
            signals=(Signal(itype, INDICATOR_TYPES.get(itype), indicator),),
            owner="app " + ",".join(owners)[:200],
            category=category,
            tags=tuple(sorted(tags)),
        )

    def checkpoint_from_progress(self, progress_at: float) -> dict[str, Any] | None:
        return {"update_time": int(progress_at) - RESUME_OVERLAP_S, "fetched_at": time.time()}

    # ------------------------------------------------------------- feedback
    def send_feedback(self, record: StoredRecord, verdict: str) -> None:
        ids = [t[len(DESCRIPTOR_TAG) :] for t in record.tags if t.startswith(DESCRIPTOR_TAG)]
        if not ids:
            raise ExchangeError("no ThreatExchange descriptor to react to", "not_supported")
        for did in ids:
            if not did.isdigit():
                continue
            url = self._with_token(
                f"{self.base}/{did}?{urlencode({'reactions': REACTIONS[verdict]})}"
            )
            self.http.request("POST", url, ok=(200,))

    # ------------------------------------------------------------ submission
    def submit(self, signals: Iterable[tuple[str, str]]) -> int:
        cfg = self.config
        if cfg.submit_share_level not in SHARE_LEVELS:
            raise ExchangeError(
                f"submit_share_level must be one of {', '.join(SHARE_LEVELS)}", "bad_config"
            )
        if cfg.submit_status not in STATUSES:
            raise ExchangeError(f"submit_status must be one of {', '.join(STATUSES)}", "bad_config")
        url = self._with_token(f"{self.base}/threat_descriptors")
        sent = 0
        for st, h in signals:
            itype = SUBMIT_TYPES.get(st)
            if itype is None:
                continue
            form = {
                "indicator": h,
                "type": itype,
                "description": cfg.submit_description[:500],
                "share_level": cfg.submit_share_level,
                "status": cfg.submit_status,
                "privacy_type": "HAS_PRIVACY_GROUP",
                "privacy_members": cfg.privacy_group,
            }
            if cfg.submit_tags.strip():
                form["tags"] = ",".join(t.strip() for t in cfg.submit_tags.split(",") if t.strip())
            resp = self.http.request("POST", url, data=form, ok=(200,))
            try:
                doc = json.loads(resp.body)
            except ValueError:
                doc = None
            if not isinstance(doc, dict) or not (doc.get("success") or doc.get("id")):
                raise ExchangeError(
                    f"ThreatExchange did not accept the descriptor for {st} {h[:16]}...",
                    "submit_refused",
                )
            sent += 1
        return sent
