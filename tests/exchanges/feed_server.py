"""A local static hash-list file server with ETag / Last-Modified / 304, like any web server."""

from __future__ import annotations

import hashlib
from email.utils import formatdate, parsedate_to_datetime

from local_http import Answer, LocalServer, Request


class FeedServer(LocalServer):
    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token
        self.body = b""
        self.content_type = "text/plain"
        self.mtime = 1_700_000_000.0
        self.full_downloads = 0

    def publish(
        self, text: str, mtime: float | None = None, content_type: str = "text/plain"
    ) -> None:
        self.body = text.encode()
        self.content_type = content_type
        self.mtime = mtime if mtime is not None else self.mtime + 60

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    def handle(self, req: Request) -> Answer:
        if self.token and req.headers.get("authorization") != f"Bearer {self.token}":
            return Answer(401, "text/plain", b"")
        if req.path != "/feed.txt":
            return Answer(404, "text/plain", b"")
        headers = {"ETag": self.etag, "Last-Modified": formatdate(self.mtime, usegmt=True)}
        inm = req.headers.get("if-none-match")
        ims = req.headers.get("if-modified-since")
        if inm == self.etag or (
            inm is None and ims and parsedate_to_datetime(ims).timestamp() >= int(self.mtime)
        ):
            return Answer(304, self.content_type, b"", headers)
        self.full_downloads += 1
        return Answer(200, self.content_type, self.body, headers)
