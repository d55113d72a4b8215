"""A local StopNCII.org hash API server (JSON) for tests.

``GET /v1/FetchHashes`` (``startTimestamp`` inclusive on ``lastModtimestamp``,
``pageSize``, opaque expiring ``nextPageToken``), ``POST /v1/SubmitHashes``,
``POST /v1/SubmitFeedback``. Every request needs ``Ocp-Apim-Subscription-Key``
and the endpoint's own ``x-functions-key`` (401 otherwise). A record is the
current snapshot of ``(signalType, hashValue)``; withdrawing it changes its
status and timestamp. ``nonmonotonic=True`` makes the first page's
``nextSetTimestamp`` larger than the last's, as in pytx's fixture.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from local_http import Answer, LocalServer, Request

KEYS = {"FetchHashes": "fetch-key", "SubmitHashes": "submit-key", "SubmitFeedback": "fb-key"}
SUBSCRIPTION = "sub-key"


class StopNCIIServer(LocalServer):
    def __init__(self, *, token_ttl_s: float = 3600, nonmonotonic: bool = False) -> None:
        super().__init__()
        self.records: dict[tuple[str, str], dict] = {}
        self.feedback: list[dict] = []
        self.submitted: list[dict] = []
        self.token_ttl_s = token_ttl_s
        self.nonmonotonic = nonmonotonic
        self._secret = b"stopncii-test-server"
        self.tokens_valid_after = 0.0  # tokens issued earlier are refused (expired)

    def put(
        self,
        signal_type: str,
        value: str,
        ts: int,
        status: str = "Received",
        cases: dict[str, str] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        self.records[(signal_type, value)] = {
            "lastModtimestamp": ts,
            "hashValue": value,
            "hashStatus": status,
            "caseNumbers": cases or {"c-" + value[:8]: status},
            "signalType": signal_type,
            "hashRegions": ["UK"],
            "CSPFeedbacks": [
                {"source": "Other", "feedbackValue": "Blocked", "tags": tags or ["Nude"]}
            ],
        }

    def _token(self, start: int, offset: int) -> str:
        body = json.dumps({"s": start, "o": offset, "t": time.time()}).encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:16]
        return base64.urlsafe_b64encode(body).decode() + "." + mac

    def _untoken(self, token: str, start: int) -> int | None:
        try:
            b64, mac = token.rsplit(".", 1)
            body = base64.urlsafe_b64decode(b64)
            ok = hmac.compare_digest(
                mac, hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:16]
            )
            data = json.loads(body)
        except Exception:  # noqa: BLE001
            return None
        if not ok or data["s"] != start or time.time() - data["t"] > self.token_ttl_s:
            return None
        if data["t"] < self.tokens_valid_after:
            return None
        return int(data["o"])

    def handle(self, req: Request) -> Answer:
        endpoint = req.path.rsplit("/", 1)[-1]
        if endpoint not in KEYS or not req.path.startswith("/v1/"):
            return Answer(404, "application/json", b'{"error":"not found"}')
        if (
            req.headers.get("ocp-apim-subscription-key") != SUBSCRIPTION
            or req.headers.get("x-functions-key") != KEYS[endpoint]
        ):
            return Answer(401, "application/json", b'{"error":"unauthorized"}')
        if endpoint == "FetchHashes" and req.method == "GET":
            return self._fetch(req)
        if req.method != "POST":
            return Answer(405, "application/json", b"{}")
        try:
            body = json.loads(req.body)
        except ValueError:
            return Answer(400, "application/json", b'{"error":"bad json"}')
        if endpoint == "SubmitFeedback":
            items = body.get("hashFeedbacks")
            if not isinstance(items, list) or body.get("count") != len(items):
                return Answer(400, "application/json", b'{"error":"bad feedback"}')
            self.feedback.extend(items)
        else:
            items = body.get("hashRecords")
            if (
                not isinstance(items, list)
                or body.get("count") != len(items)
                or any(i.get("signalType") not in ("ImagePDQ", "VideoMD5") for i in items)
            ):
                return Answer(400, "application/json", b'{"error":"bad submission"}')
            self.submitted.extend(items)
        return Answer(200, "application/json", json.dumps({"count": len(items)}).encode())

    def _fetch(self, req: Request) -> Answer:
        try:
            start = int(req.q("startTimestamp", "10") or 10)
            size = int(req.q("pageSize", "800") or 800)
        except ValueError:
            return Answer(400, "application/json", b'{"error":"bad params"}')
        token = req.q("nextPageToken")
        offset = 0
        if token:
            got = self._untoken(token, start)
            if got is None:
                return Answer(400, "application/json", b'{"error":"token expired"}')
            offset = got
        rows = sorted(
            (r for r in self.records.values() if r["lastModtimestamp"] >= start),
            key=lambda r: (r["lastModtimestamp"], r["signalType"], r["hashValue"]),
        )
        page = rows[offset : offset + size]
        more = offset + size < len(rows)
        last_ts = max((r["lastModtimestamp"] for r in rows), default=start)
        next_set = page[-1]["lastModtimestamp"] if page else start
        if self.nonmonotonic and more and offset == 0:
            next_set = last_ts + 50  # a first page that overshoots, as in the fixture
        out = {
            "count": len(page),
            "nextSetTimestamp": next_set,
            "hasMoreRecords": more,
            "hashRecords": page,
        }
        if more:
            out["nextPageToken"] = self._token(start, offset + size)
        return Answer(200, "application/json; charset=utf-8", json.dumps(out).encode())
