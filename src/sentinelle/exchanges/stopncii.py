"""StopNCII.org hash API (JSON behind Azure API Management): fetch, withdrawals, feedback, submit.

Wire facts (``../shared/notes/exchanges.md`` section 2, from pytx's client and
its fixtures copied from the vendor's examples):

* Every request sends ``Ocp-Apim-Subscription-Key`` and an endpoint-specific
  ``x-functions-key`` (``FetchHashes``, ``SubmitHashes``, ``SubmitFeedback``).
* ``GET /v1/FetchHashes?startTimestamp=&pageSize=[&nextPageToken=]`` returns
  ``{count, nextSetTimestamp, nextPageToken, hasMoreRecords, hashRecords: [...]}``;
  a record is the *current snapshot* of ``(signalType, hashValue)``.
* ``POST /v1/SubmitFeedback`` ``{count, hashFeedbacks: [{hashValue, feedbackValue, tags}]}``
  and ``POST /v1/SubmitHashes`` ``{count, hashRecords: [{lastModtimestamp,
  signalType, hashValue, CSPFeedbacks}]}``.

Where this client differs from pytx:

* **Withdrawals are applied.** A record whose ``hashStatus`` is ``Withdrawn`` or
  ``Deleted``, or whose every case is, deletes the hash (pytx compares the hash
  *value* with the status, so it never deletes anything).
* Unknown enum values are kept, not a reason to drop the record.
* ``signalType`` is sent as the enum's value (``ImagePDQ``), not ``str(enum)``.
* ``nextSetTimestamp`` may go backwards between pages; the checkpoint keeps the
  maximum seen. The page token is kept with its ``startTimestamp`` so a fetch
  resumes mid-run; an expired token (HTTP 400) falls back to re-reading from
  ``startTimestamp``, which is idempotent.
* A malformed body (HMA #2004) is a :class:`MalformedPage`: retried, quarantined,
  never a wedged loop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from .api import (
    RESUME_OVERLAP_S,
    AuthError,
    ExchangeAPI,
    ExchangeConfig,
    ExchangeError,
    ExchangeRecord,
    FetchPage,
    MalformedPage,
    NotSupported,
    Signal,
    StoredRecord,
    TransientError,
)

SIGNAL_TYPES: dict[str, str | None] = {
    "ImagePDQ": "pdq",
    "VideoMD5": "md5",
    "VideoTMK": None,
    "Text": None,
    "URL": None,
    "Unknown": None,
}
TO_STOPNCII = {"pdq": "ImagePDQ", "md5": "VideoMD5"}
GONE = frozenset({"Withdrawn", "Deleted"})
FEEDBACK = {"confirm": "Blocked", "reject": "NotBlocked"}
MAX_RECORDS_PER_PAGE = 10_000
MAX_TOKEN_RESTARTS = 3  # per fetch: re-reads after an expired nextPageToken


@dataclass
class StopNCIIConfig(ExchangeConfig):
    environment: str = "production"
    page_size: int = 800
    start_timestamp: int = 10  # pytx's DEFAULT_START_TIME: everything
    feedback_tags: str = ""  # comma-separated tags sent with feedback


@dataclass(frozen=True)
class StopNCIIKeys:
    fetch_key: str
    subscription_key: str
    submit_key: str = ""
    feedback_key: str = ""

    def __repr__(self) -> str:
        return "StopNCIIKeys(***)"


class StopNCIIExchange(ExchangeAPI):
    type_name: ClassVar[str] = "stopncii"
    description: ClassVar[str] = "StopNCII.org hash API (JSON)"
    config_cls: ClassVar[type[ExchangeConfig]] = StopNCIIConfig
    credential_format: ClassVar[str] = "fetch_key,subscription_key[,submit_key[,feedback_key]]"
    supports_feedback: ClassVar[bool] = True
    supports_submit: ClassVar[bool] = True
    environments: ClassVar[dict[str, str]] = {"production": "https://api.stopncii.org/v1"}
    config: StopNCIIConfig

    @classmethod
    def parse_credentials(cls, secret: str) -> StopNCIIKeys:
        parts = [p.strip() for p in secret.strip().split(",")]
        if len(parts) < 2 or not parts[0] or not parts[1] or len(parts) > 4:
            raise AuthError(
                f"StopNCII credentials must be '{cls.credential_format}'", "bad_credentials"
            )
        return StopNCIIKeys(*parts)

    def _headers(self, endpoint: str) -> dict[str, str]:
        keys: StopNCIIKeys | None = self.credentials
        if keys is None:
            raise AuthError(
                "StopNCII exchange has no credentials configured", "missing_credentials"
            )
        key = {
            "FetchHashes": keys.fetch_key,
            "SubmitHashes": keys.submit_key,
            "SubmitFeedback": keys.feedback_key,
        }[endpoint]
        if not key:
            raise NotSupported(f"no function key for the StopNCII endpoint {endpoint}")
        return {"Ocp-Apim-Subscription-Key": keys.subscription_key, "x-functions-key": key}

    def _url(self, endpoint: str) -> str:
        return f"{StopNCIIExchange.base_url(self.config, self.config.environment)}/{endpoint}"

    # ---------------------------------------------------------------- fetch
    def fetch(self, checkpoint: dict[str, Any] | None) -> Iterator[FetchPage]:
        cp = dict(checkpoint or {"start": int(self.config.start_timestamp), "token": None})
        start = int(cp["start"])
        token = cp.get("token")
        restarts = 0
        while True:
            params: dict[str, Any] = {"startTimestamp": start, "pageSize": self.config.page_size}
            if token:
                params["nextPageToken"] = token
            try:
                resp = self.http.get(
                    self._url("FetchHashes"), params=params, headers=self._headers("FetchHashes")
                )
            except ExchangeError as e:
                if token and e.code == "exchange_http" and restarts < MAX_TOKEN_RESTARTS:
                    token = None  # expired page token: re-read from startTimestamp
                    restarts += 1
                    continue
                if token and e.code == "exchange_http":
                    raise TransientError(
                        f"StopNCII keeps refusing its own page tokens ({e.message})"
                    ) from None
                raise
            resp.require_type("application/json")
            data = _json(resp.body)
            records, bad = self._records(data, resp.body)
            more = data.get("hasMoreRecords")
            nxt = data.get("nextSetTimestamp")
            if not isinstance(more, bool) or not isinstance(nxt, int) or isinstance(nxt, bool):
                raise MalformedPage(
                    "StopNCII: hasMoreRecords/nextSetTimestamp missing or wrong",
                    resp.body,
                    "bad_json",
                )
            token = data.get("nextPageToken") if more else None
            if more and not isinstance(token, str):
                raise MalformedPage(
                    "StopNCII: hasMoreRecords without a nextPageToken", resp.body, "bad_json"
                )
            if more:
                cp = {"start": start, "token": token}
            else:
                # trust the LAST page's nextSetTimestamp (earlier pages may overshoot),
                # never moving backwards
                cp = {"start": max(start, nxt), "token": None}
            yield FetchPage(records, cp, progress_at=float(max(start, nxt)), malformed_records=bad)
            if not more:
                return

    def _records(self, data: dict[str, Any], body: bytes) -> tuple[list[ExchangeRecord], int]:
        raw = data.get("hashRecords")
        if not isinstance(raw, list) or len(raw) > MAX_RECORDS_PER_PAGE:
            raise MalformedPage(
                "StopNCII: hashRecords missing, not a list or too long", body, "bad_json"
            )
        out, bad = [], 0
        for r in raw:
            rec = self._record(r)
            if rec is None:
                bad += 1
            else:
                out.append(rec)
        return out, bad

    @staticmethod
    def _record(r: Any) -> ExchangeRecord | None:
        if not isinstance(r, dict):
            return None
        st, value = r.get("signalType"), r.get("hashValue")
        if not isinstance(st, str) or not isinstance(value, str) or not value or len(value) > 256:
            return None
        status = r.get("hashStatus")
        cases = r.get("caseNumbers") or {}
        case_states = (
            [v for v in cases.values() if isinstance(v, str)] if isinstance(cases, dict) else []
        )
        gone = status in GONE or (bool(case_states) and all(s in GONE for s in case_states))
        tags: set[str] = set()
        for fb in r.get("CSPFeedbacks") or []:
            if isinstance(fb, dict):
                tags.update(t for t in fb.get("tags") or [] if isinstance(t, str) and len(t) < 64)
        key = f"{st}:{value.lower()}"
        signal = Signal(st, SIGNAL_TYPES.get(st), value)
        return ExchangeRecord(
            key=key,
            signals=(signal,),
            deleted=gone,
            owner="StopNCII",
            category=status if isinstance(status, str) else None,
            tags=tuple(sorted(tags)),
        )

    def checkpoint_from_progress(self, progress_at: float) -> dict[str, Any] | None:
        return {
            "start": max(int(self.config.start_timestamp), int(progress_at) - RESUME_OVERLAP_S),
            "token": None,
        }

    # ------------------------------------------------------ feedback, submit
    def _post(self, endpoint: str, payload: dict[str, Any]) -> None:
        resp = self.http.request(
            "POST",
            self._url(endpoint),
            content=json.dumps(payload).encode(),
            headers={**self._headers(endpoint), "Content-Type": "application/json"},
            ok=(200, 201, 202, 204),
        )
        if resp.body:
            _json(resp.body)  # an answer that is not JSON is a protocol error

    def send_feedback(self, record: StoredRecord, verdict: str) -> None:
        tags = [t for t in self.config.feedback_tags.split(",") if t.strip()]
        self._post(
            "SubmitFeedback",
            {
                "count": 1,
                "hashFeedbacks": [
                    {"hashValue": record.hash, "feedbackValue": FEEDBACK[verdict], "tags": tags}
                ],
            },
        )

    def submit(self, signals: Iterable[tuple[str, str]]) -> int:
        now = int(time.time())
        batch = [
            {
                "lastModtimestamp": now,
                "signalType": TO_STOPNCII[st],
                "hashValue": h,
                "CSPFeedbacks": [{"tags": [], "feedbackValue": "Blocked"}],
            }
            for st, h in signals
            if st in TO_STOPNCII
        ]
        if batch:
            self._post("SubmitHashes", {"count": len(batch), "hashRecords": batch})
        return len(batch)


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedPage(f"StopNCII: invalid JSON ({e})", body, "bad_json") from None
    if not isinstance(data, dict):
        raise MalformedPage("StopNCII: expected a JSON object", body, "bad_json")
    return data
