"""A local Meta ThreatExchange Graph API server: ``/{pg}/threat_updates/`` and reactions.

``access_token`` must be the configured app token (400 with an OAuthException body,
as Graph answers, otherwise). Updates are ordered by ``last_updated``; ``start_time``
is inclusive; ``paging.next`` is an absolute URL with an ``after`` cursor and the
token; a group without threat_updates enabled answers 500.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from local_http import Answer, LocalServer, Request

TOKEN = "1234567890|abcdefghijklmnopqrstuvwxyz"


class TEServer(LocalServer):
    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, list[dict]] = {}
        self.disabled: set[str] = set()
        self.reactions: list[tuple[str, str]] = []

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
