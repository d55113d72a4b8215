"""A local Meta ThreatExchange Graph API server: ``/{pg}/threat_updates/`` and reactions.

``access_token`` must be the configured app token (400 with an OAuthException body,
as Graph answers, otherwise). Updates are ordered by ``last_updated``; ``start_time``
is inclusive; ``paging.next`` is an absolute URL with an ``after`` cursor and the
token; a group without threat_updates enabled answers 500.

``POST /threat_descriptors`` (form body) creates a descriptor shared with one
privacy group (``privacy_type=HAS_PRIVACY_GROUP``, ``privacy_members``): it is
validated as Graph does (known type, share level, status; an existing group) and
appears in that group's threat_updates, owned by the submitting app.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode

from local_http import Answer, LocalServer, Request

TOKEN = "1234567890|abcdefghijklmnopqrstuvwxyz"


class TEServer(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, list[dict]] = {}
        self.disabled: set[str] = set()
        self.reactions: list[tuple[str, str]] = []
        self.submitted: list[dict[str, str]] = []
        self.clock = 2000

    def put(
        self,
        pg: str,
        itype: str,
        indicator: str,
        ts: int,
        *,
        delete: bool = False,
        owner: str | None = "616912251743987",
        tags=("media_type_photo",),
        status: str = "MALICIOUS",
        descriptors: bool = True,
        did: str = "456",
    ) -> None:
        rows = self.groups.setdefault(pg, [])
        rows[:] = [r for r in rows if (r["type"], r["indicator"]) != (itype, indicator)]
        rec: dict = {
            "id": str(abs(hash((itype, indicator))) % 10**9),
            "indicator": indicator,
            "type": itype,
            "last_updated": ts,
            "should_delete": delete,
        }
        if descriptors:
            d: dict = {
                "id": did,
                "status": status,
                "tags": {"data": [{"id": "1", "text": t} for t in tags]},
                "reactions": [{"key": "HELPFUL", "value": "111"}],
            }
            if owner:
                d["owner"] = {"id": owner}
            rec["descriptors"] = {"data": [d]}
        rows.append(rec)
        rows.sort(key=lambda r: r["last_updated"])

    def handle(self, req: Request) -> Answer:
        if req.q("access_token") != TOKEN:
            body = {
                "error": {
                    "message": "Invalid OAuth access token.",
                    "type": "OAuthException",
                    "code": 190,
                }
            }
            return Answer(400, "application/json", json.dumps(body).encode())
        parts = req.path.strip("/").split("/")
        if req.method == "POST" and parts == ["threat_descriptors"]:
            return self._upload(req)
        if req.method == "POST" and len(parts) == 1 and parts[0].isdigit():
            self.reactions.append((parts[0], req.q("reactions") or ""))
            return Answer(200, "application/json", b'{"success":true}')
        if req.method != "GET" or len(parts) != 2 or parts[1] != "threat_updates":
            return Answer(404, "application/json", b'{"error":{"message":"unknown path"}}')
        pg = parts[0]
        if pg in self.disabled or pg not in self.groups:
            return Answer(500, "application/json", b'{"error":{"message":"not enabled"}}')
        start = int(req.q("start_time", "0") or 0)
        limit = int(req.q("limit", "100") or 100)
        after = int(req.q("after", "0") or 0)
        rows = [r for r in self.groups[pg] if r["last_updated"] >= start]
        page = rows[after : after + limit]
        doc: dict = {"data": page}
        if after + limit < len(rows):
            q = {
                "access_token": TOKEN,
                "limit": limit,
                "after": after + limit,
                "start_time": start,
                "fields": req.q("fields") or "",
            }
            doc["paging"] = {"next": f"{self.url}/{pg}/threat_updates/?{urlencode(q)}"}
        return Answer(200, "application/json", json.dumps(doc).encode())

    def _upload(self, req: Request) -> Answer:
        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._error("expected a form body")
        form = {k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()}
        itype, indicator = form.get("type", ""), form.get("indicator", "")
        if itype not in ("HASH_PDQ", "HASH_MD5", "HASH_SHA256") or not indicator:
            return self._error("(#100) Param type/indicator must be a valid indicator")
        if form.get("share_level") not in ("WHITE", "GREEN", "AMBER", "RED"):
            return self._error("(#100) Param share_level must be one of {WHITE, GREEN, AMBER, RED}")
        if form.get("status") not in ("MALICIOUS", "SUSPICIOUS", "NON_MALICIOUS", "UNKNOWN"):
            return self._error("(#100) Param status is not valid")
        pg = form.get("privacy_members", "")
        if form.get("privacy_type") != "HAS_PRIVACY_GROUP" or pg not in self.groups:
            return self._error("(#100) privacy_members must name a privacy group you can use")
        self.submitted.append(form)
        self.clock += 1
        did = str(900_000 + len(self.submitted))
        tags = tuple(t for t in form.get("tags", "").split(",") if t)
        self.put(pg, itype, indicator, self.clock, owner=TOKEN.split("|")[0], tags=tags, did=did)
        return Answer(200, "application/json", json.dumps({"success": True, "id": did}).encode())

    @staticmethod
    def _error(message: str) -> Answer:
        body = {"error": {"message": message, "type": "OAuthException", "code": 100}}
        return Answer(400, "application/json", json.dumps(body).encode())
