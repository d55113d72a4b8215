"""A local NCMEC hash sharing API v2 server (XML) for tests and the benchmark.

Speaks the documented wire format (``../shared/notes/exchanges.md`` section 1):
``GET /v2/status``, ``/v2/members``, ``/v2/entries?from&to`` with ``<paging><next>``
links, ``/v2/feedback/{TYPE}/reasons``, ``PUT /v2/entries/{member}/{id}/{TYPE}/feedback``.
HTTP Basic auth (401 otherwise). Windows are ``from`` exclusive, ``to`` inclusive.

A ``next`` link is valid only as issued, for its exact window: a request with a
``start`` that the server did not hand out (for example the link replayed with a
different ``to``) is answered 400, which is how the real service's window-bound
cursors behave from the client's point of view (HMA #1744).

Data: :class:`Event` rows (an entry's state at a time, or its deletion) in a
:class:`ListSource`, or a :class:`SyntheticSource` that computes entry ``i`` on
the fly (the 1M-entry benchmark holds nothing in memory).
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from local_http import Answer, LocalServer, Request
from lxml import etree

NS = "https://hashsharing.ncmec.org/hashsharing/v2"


@dataclass
class Event:
    ts: int
    member_id: str
    entry_id: str
    kind: str = "image"  # image | video
    deleted: bool = False
    classification: str | None = "A1"
    fingerprints: dict[str, str] = field(default_factory=dict)  # name -> value ("href:" = link)
    member_name: str = "Example Member"


class ListSource:
    def __init__(self, events: list[Event]) -> None:
        self.events = sorted(events, key=lambda e: e.ts)
        self.ts = [e.ts for e in self.events]

    def window(self, start: int, end: int) -> tuple[int, int]:
        return bisect.bisect_right(self.ts, start), bisect.bisect_right(self.ts, end)

    def get(self, i: int) -> Event:
        return self.events[i]

    def add(self, ev: Event) -> None:
        self.events.append(ev)
        self.events.sort(key=lambda e: e.ts)
        self.ts = [e.ts for e in self.events]


class SyntheticSource:
    """``n`` image entries, ``per_second`` per second from ``base``: md5 + pdq each."""

    def __init__(self, n: int, base: int = 1_600_000_000, per_second: int = 10) -> None:
        self.n, self.base, self.per_second = n, base, per_second

    def window(self, start: int, end: int) -> tuple[int, int]:
        def first_after(t: int) -> int:
            return max(0, min(self.n, (t - self.base + 1) * self.per_second))

        return first_after(start), first_after(end)

    def render(self, a: int, b: int) -> list[str]:
        """Entries ``a..b-1`` as XML, byte-identical to ``render_event(self.get(i))``
        but without the per-entry objects (the benchmark's server must not be the
        bottleneck of the clients it serves)."""
        md5, sha = hashlib.md5, hashlib.sha256
        pdna = "ab" * 72
        out = []
        stamp_of: dict[int, str] = {}
        for i in range(a, b):
            ts = self.base + i // self.per_second
            stamp = stamp_of.get(ts)
            if stamp is None:
                stamp = stamp_of[ts] = fmt(ts)
            k = str(i).encode()
            out.append(
                f'<image><member id="42">Example Member</member><timestamp>{stamp}</timestamp>'
                f"<id>e{i}</id><classification>A1</classification><fingerprints>"
                f"<md5>{md5(k).hexdigest()}</md5><pdq>{sha(k).hexdigest()}</pdq>"
                f"<pdna>{pdna}</pdna></fingerprints></image>"
            )
        return out

    def get(self, i: int) -> Event:
        md5 = hashlib.md5(str(i).encode()).hexdigest()
        pdq = hashlib.sha256(str(i).encode()).hexdigest()
        return Event(
            self.base + i // self.per_second,
            "42",
            f"e{i}",
            fingerprints={"md5": md5, "pdq": pdq, "pdna": "ab" * 72},
        )


def fmt(ts: float, ms: bool = False) -> str:
    d = datetime.fromtimestamp(ts, tz=UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + (".000Z" if ms else "Z")


def parse_ts(s: str) -> int:
    v = s.strip().replace("Z", "+00:00")
    return int(datetime.fromisoformat(v).timestamp())


def render_event(e: Event) -> str:
    tag = ("deleted" + e.kind.capitalize()) if e.deleted else e.kind
    parts = [
        f"<{tag}>",
        f'<member id="{escape(e.member_id)}">{escape(e.member_name)}</member>',
        f"<timestamp>{fmt(e.ts)}</timestamp>",
        f"<id>{escape(e.entry_id)}</id>",
    ]
    if not e.deleted:
        if e.classification:
            parts.append(f"<classification>{escape(e.classification)}</classification>")
        parts.append("<fingerprints>")
        for name, value in e.fingerprints.items():
            if value.startswith("href:"):
                parts.append(f'<{name} rel="self" href="{escape(value[5:])}"/>')
            else:
                parts.append(f"<{name}>{escape(value)}</{name}>")
        parts.append("</fingerprints>")
    parts.append(f"</{tag}>")
    return "".join(parts)


class NCMECServer(LocalServer):
    REASONS = [("01234567-abcd-0123-4567-012345678900", "Not CSAM")]

    def __init__(
        self,
        source: ListSource | SyntheticSource | None = None,
        *,
        username: str = "esp-user",
        password: str = "s3cret-pw",
        page_size: int = 1000,
    ) -> None:
        super().__init__()
        self.source = source or ListSource([])
        self.username, self.password = username, password
        self.page_size = page_size
        self.issued: set[str] = set()
        self.feedback: list[dict[str, str]] = []
        self.entry_requests = 0
        self._issue_lock = threading.Lock()

    def handle(self, req: Request) -> Answer:
        if req.basic_auth() != (self.username, self.password):
            return Answer(401, "text/plain", b"")
        p = req.path
        if req.method == "GET" and p == "/v2/status":
            return self._xml(
                "status",
                f"<ipAddress>127.0.0.1</ipAddress><username>{self.username}</username>"
                '<member id="7">Sentinelle Test ESP</member>',
            )
        if req.method == "GET" and p == "/v2/members":
            return self._xml(
                "members",
                '<member id="42">Example Member</member><member id="43">Example Member2</member>',
            )
        if req.method == "GET" and p == "/v2/entries":
            return self._entries(req)
        parts = p.strip("/").split("/")
        if req.method == "GET" and len(parts) == 4 and parts[:2] == ["v2", "feedback"]:
            reasons = "".join(
                f'<reason guid="{g}" name="{n}" type="{parts[2]}"/>' for g, n in self.REASONS
            )
            return self._xml("availableFeedbackReasons", reasons)
        if req.method == "PUT" and len(parts) == 6 and parts[0:2] == ["v2", "entries"]:
            return self._feedback(req, parts[2], parts[3], parts[4])
        return Answer(404, "text/plain", b"not found")

    @staticmethod
    def _xml(tag: str, inner: str = "") -> Answer:
        body = f'<?xml version="1.0" encoding="UTF-8"?><{tag} xmlns="{NS}">{inner}</{tag}>'
        return Answer(200, "application/xml; charset=utf-8", body.encode())

    def _entries(self, req: Request) -> Answer:
        try:
            start, end = parse_ts(req.q("from") or ""), parse_ts(req.q("to") or "")
        except ValueError:
            return Answer(400, "text/plain", b"bad from/to")
        offset = req.q("start")
        if offset is not None:
            with self._issue_lock:
                if req.raw_path not in self.issued:
                    return Answer(400, "text/plain", b"next link not valid for this window")
            first = int(offset)
        else:
            first = 1
        self.entry_requests += 1
        lo, hi = self.source.window(start, end)
        total = hi - lo
        a = lo + first - 1
        b = min(hi, a + self.page_size)
        if isinstance(self.source, SyntheticSource):
            images, videos = self.source.render(a, b), []
            last = self.source.base + (b - 1) // self.source.per_second
            max_ts = fmt(last if b > a else end)
        else:
            events = [self.source.get(i) for i in range(a, b)]
            images = [render_event(e) for e in events if e.kind == "image"]
            videos = [render_event(e) for e in events if e.kind == "video"]
            max_ts = fmt(max((e.ts for e in events), default=end))
        body = [
            f'<?xml version="1.0" encoding="UTF-8"?><queryResult xmlns="{NS}">',
            f'<images count="{len(images)}" maxTimestamp="{max_ts}">',
            *images,
            "</images>",
            f'<videos count="{len(videos)}" maxTimestamp="{max_ts}">',
            *videos,
            "</videos>",
        ]
        if b < hi:
            link = "/v2/entries?" + urlencode(
                {
                    "from": fmt(start, ms=True),
                    "to": fmt(end, ms=True),
                    "start": b - lo + 1,
                    "size": self.page_size,
                    "max": total,
                }
            )
            with self._issue_lock:
                self.issued.add(link)
            body.append(f"<paging><next>{escape(link)}</next></paging>")
        body.append("</queryResult>")
        return Answer(200, "application/xml; charset=utf-8", "".join(body).encode())

    def _feedback(self, req: Request, member: str, entry: str, fp_type: str) -> Answer:
        try:
            root = etree.fromstring(req.body, etree.XMLParser(resolve_entities=False))
        except etree.XMLSyntaxError:
            return Answer(400, "text/plain", b"bad xml")
        if etree.QName(root).localname != "feedbackSubmission" or len(root) != 1:
            return Answer(400, "text/plain", b"expected feedbackSubmission")
        kind = etree.QName(root[0]).localname
        guids = [g.text for g in root.iter(f"{{{NS}}}guid")]
        if kind == "negative" and not guids:
            return Answer(400, "text/plain", b"negative feedback needs a reason")
        if kind not in ("affirmative", "negative"):
            return Answer(400, "text/plain", b"bad feedback")
        self.feedback.append(
            {
                "member": member,
                "entry": entry,
                "type": fp_type,
                "kind": kind,
                "reason": guids[0] if guids else "",
            }
        )
        return self._xml("submissionResult")
