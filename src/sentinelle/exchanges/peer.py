"""Sentinelle-to-Sentinelle sharing, subscriber side: fetch and verify a peer's signed feed.

``sentinelle exchange add partner --type sentinelle --base-url https://a.example
--setting feed=shared-confirmed --setting public_key=<base64> --credentials-env PARTNER_KEY``

Every page (``GET {base}/v1/exchange/feeds/{feed}?after=N``, API key as
``Authorization: Bearer``) is checked before anything is applied:

* the Ed25519 signature over the exact body bytes, with the public key given at
  configuration time (and the key id in ``X-Sentinelle-Key-Id`` must be that
  key's);
* the page names the feed asked for, continues exactly from our checkpoint
  (``after``), its sequence numbers strictly increase and ``next`` is the last;
* every item is well formed.

A page failing any check is a :class:`~.api.MalformedPage`: quarantined, the
checkpoint stays, nothing of it is written. Items whose ``expires_at`` has
passed are applied as deletions. Feedback (a reviewer's confirm / reject of a
match on a shared entry) goes back as ``confirmed`` / ``false_positive`` opinions.
Signal types are whatever the registry knows (:mod:`sentinelle.formats.entry`),
so new exact types (e.g. model hashes) travel like any other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from .api import (
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
from .publish import FEED_VERSION, MAX_PAGE, parse_public_key, verify

OPINION = {"confirm": "confirmed", "reject": "false_positive"}


@dataclass
class PeerConfig(ExchangeConfig):
    feed: str = ""
    public_key: str = ""
    page_size: int = 1000


class PeerExchange(ExchangeAPI):
    type_name: ClassVar[str] = "sentinelle"
    description: ClassVar[str] = "another Sentinelle instance's signed feed of confirmed hashes"
    config_cls: ClassVar[type[ExchangeConfig]] = PeerConfig
    credential_format: ClassVar[str] = "the API key the publisher gave you"
    supports_feedback: ClassVar[bool] = True
    config: PeerConfig

    def __init__(self, config: ExchangeConfig, credentials: Any, http: Any) -> None:
        super().__init__(config, credentials, http)
        if not self.config.base_url or not self.config.feed:
            raise ExchangeError("a sentinelle exchange needs base_url and feed", "bad_config")
        self.public = parse_public_key(self.config.public_key)

    def _url(self, suffix: str = "") -> str:
        return (
            f"{self.config.base_url.rstrip('/')}/v1/exchange/feeds/"
            f"{quote(self.config.feed, safe='')}{suffix}"
        )

    def _headers(self) -> dict[str, str]:
        if not self.credentials:
            raise AuthError("sentinelle exchange has no API key configured", "missing_credentials")
        return {"Authorization": f"Bearer {self.credentials}"}

    def fetch(self, checkpoint: dict[str, Any] | None) -> Iterator[FetchPage]:
        after = int((checkpoint or {}).get("after", 0))
        size = max(1, min(MAX_PAGE, int(self.config.page_size)))
        while True:
            resp = self.http.get(
                self._url(), params={"after": after, "limit": size}, headers=self._headers()
            )
            resp.require_type("application/json")
            verify(self.public, resp.body, resp.headers)
            doc = self._check(resp.body, after)
            now = time.time()
            records = []
            for it in doc["items"]:
                gone = it["op"] == "remove" or (
                    it.get("expires_at") is not None and it["expires_at"] <= now
                )
                st = it["signal_type"]
                records.append(
                    ExchangeRecord(
                        key=f"{st}:{it['hash']}",
                        signals=(Signal(st, st, it["hash"]),),
                        deleted=gone,
                        owner=self.config.feed,
                        category=it.get("category"),
                    )
                )
            after = int(doc["next"])
            yield FetchPage(records, {"after": after}, progress_at=float(doc["generated_at"]))
            if not doc["more"]:
                return

    def _check(self, body: bytes, after: int) -> dict[str, Any]:
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise MalformedPage(f"feed page is not JSON ({e})", body, "bad_json") from None
        if not isinstance(doc, dict) or doc.get("v") != FEED_VERSION:
            raise MalformedPage("feed page has an unknown version", body, "bad_feed")
        if doc.get("feed") != self.config.feed:
            raise MalformedPage("feed page is for another feed", body, "bad_feed")
        if doc.get("after") != after:
            raise MalformedPage(
                f"feed page continues from {doc.get('after')!r}, expected {after}",
                body,
                "bad_sequence",
            )
        items = doc.get("items")
        if not isinstance(items, list) or not isinstance(doc.get("more"), bool):
            raise MalformedPage("feed page without items", body, "bad_feed")
        last = after
        for it in items:
            ok = (
                isinstance(it, dict)
                and isinstance(it.get("seq"), int)
                and it.get("op") in ("add", "remove")
                and isinstance(it.get("signal_type"), str)
                and isinstance(it.get("hash"), str)
                and len(it["hash"]) <= 128
                and (it.get("expires_at") is None or isinstance(it["expires_at"], int))
            )
            if not ok:
                raise MalformedPage("feed page has a malformed item", body, "bad_feed")
            if it["seq"] <= last:
                raise MalformedPage("feed sequence numbers do not increase", body, "bad_sequence")
            last = it["seq"]
        if doc.get("next") != last or not isinstance(doc.get("generated_at"), int):
            raise MalformedPage("feed page 'next' is not its last sequence", body, "bad_sequence")
        return doc

    def send_feedback(self, record: StoredRecord, verdict: str) -> None:
        body = json.dumps(
            {
                "items": [
                    {
                        "signal_type": record.signal_type,
                        "hash": record.hash,
                        "opinion": OPINION[verdict],
                    }
                ]
            }
        ).encode()
        self.http.request(
            "POST",
            self._url("/opinions"),
            content=body,
            headers={**self._headers(), "Content-Type": "application/json"},
            ok=(200, 201, 204),
        )
