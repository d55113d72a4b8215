"""CyberTipline client against a real local server implementing the documented protocol.

The server (tests/support/cybertip_server.py) validates everything it receives against the
XSD, enforces Basic auth and can be told to fail transiently, lose answers or send
hostile XML. Retries must never open a second report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
from pathlib import Path

import pytest
from cybertip_server import CyberTipServer

from sentinelle.reports.builder import (
    INCIDENT_CHILD_PORNOGRAPHY,
    Email,
    FileInput,
    IncidentSummary,
    Person,
    Reporter,
    ReportInput,
    annotations_for_verdict,
    build_file_details_xml,
    build_report_xml,
)
from sentinelle.reports.client import (
    PRODUCTION_URL,
    TEST_URL,
    CyberTipConfig,
    CyberTiplineClient,
)
from sentinelle.reports.errors import ReportError
from sentinelle.reports.xsd import load_schema

USER, PASSWORD = "esp-user", "esp-secret"
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def server(shared: Path):  # type: ignore[no-untyped-def]
    with CyberTipServer(
        shared / "schemas/cyber_tipline.xsd", username=USER, password=PASSWORD
    ) as s:
        yield s


class Sleeps(list):
    def __call__(self, s: float) -> None:
        self.append(s)


def make_client(server: CyberTipServer, **kw: object) -> tuple[CyberTiplineClient, Sleeps]:
    sleeps = Sleeps()
    cfg = dict(base_url=server.url, username=USER, password=PASSWORD, timeout_s=5.0)
    cfg.update(kw)
    return CyberTiplineClient(CyberTipConfig(**cfg), sleep=sleeps), sleeps  # type: ignore[arg-type]


def report_xml() -> bytes:
    return build_report_xml(
        ReportInput(
            IncidentSummary(INCIDENT_CHILD_PORNOGRAPHY, T0, platform="Example"),
            Reporter(Person("A", "B", emails=(Email("safety@example.org"),))),
        )
    )


def test_status_and_xsd(server: CyberTipServer, shared: Path) -> None:
    client, _ = make_client(server)
    resp = client.status()
    assert resp.response_code == 0 and USER in (resp.description or "")
    assert resp.server_request_id
    xsd = client.xsd()
    assert xsd == (shared / "schemas/cyber_tipline.xsd").read_bytes()
    load_schema(xsd)


def test_full_protocol_round_trip(server: CyberTipServer) -> None:
    client, _ = make_client(server)
    opened = client.submit(report_xml())
    rid = opened.report_id
    assert rid is not None and server.reports[rid].status == "open"
    data = b"benign test bytes"
    up = client.upload(rid, data, "a.bin", "application/octet-stream")
    assert up.hash == hashlib.md5(data).hexdigest() and up.file_id
    f = FileInput.from_bytes(
        data, file_viewed_by_esp=True, annotations=annotations_for_verdict("ai_edited")
    )
    client.fileinfo(build_file_details_xml(rid, up.file_id, f))
    assert b"<generativeAi>true</generativeAi>" in (
        server.reports[rid].files[up.file_id].details or b""
    )
    done = client.finish(rid)
    assert done.report_id == rid and done.file_ids == (up.file_id,)
    assert server.reports[rid].status == "finished"
    with pytest.raises(ReportError) as e:
        client.retract(rid)
    assert e.value.code == "already_finished" and e.value.response_code == 5102


def test_server_rejects_invalid_xml_and_client_does_not_retry(server: CyberTipServer) -> None:
    client, sleeps = make_client(server)
    before = server.count("submit")
    with pytest.raises(ReportError) as e:
        client.submit(b"<report><additionalInfo>x</additionalInfo></report>")
    assert e.value.code == "rejected" and e.value.response_code == 4100
    assert "incidentSummary" in e.value.message
    assert server.count("submit") == before + 1 and sleeps == []


def test_wrong_credentials_fail_fast(server: CyberTipServer) -> None:
    client, sleeps = make_client(server, password="wrong")
    before = server.count("status")
    with pytest.raises(ReportError) as e:
        client.status()
    assert e.value.code == "auth_failed" and e.value.http_status == 401
    assert server.count("status") == before + 1 and sleeps == []


def test_missing_credentials_never_touch_the_network(server: CyberTipServer) -> None:
    before = len(server.calls)
    client = CyberTiplineClient(CyberTipConfig(base_url=server.url))
    with pytest.raises(ReportError) as e:
        client.submit(report_xml())
    assert e.value.code == "no_credentials"
    assert len(server.calls) == before


def test_transient_errors_are_retried_with_backoff(server: CyberTipServer) -> None:
    client, sleeps = make_client(server, backoff_s=0.5)
    server.fail_next("status", "server_error", 2)
    server.fail_next("status", "gateway", 1)
    resp = client.status()
    assert resp.attempts == 4
    assert len(sleeps) == 3
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0 and 1.0 <= sleeps[2] <= 2.0


def test_retries_are_bounded(server: CyberTipServer) -> None:
    client, sleeps = make_client(server, retries=2)
    server.fail_next("status", "server_error", 3)
    with pytest.raises(ReportError) as e:
        client.status()
    assert e.value.code == "transient" and e.value.attempts == 3 and len(sleeps) == 2


def test_submit_server_error_document_is_retried_and_opens_one_report(
    server: CyberTipServer,
) -> None:
    client, _ = make_client(server)
    server.fail_next("submit", "server_error", 1)
    n = len(server.reports)
    resp = client.submit(report_xml())
    assert resp.attempts == 2 and len(server.reports) == n + 1


@pytest.mark.parametrize("mode", ["lost", "gateway", "hang"])
def test_submit_with_lost_answer_is_never_repeated(server: CyberTipServer, mode: str) -> None:
    client, sleeps = make_client(server, timeout_s=0.5)
    server.hang_s = 1.5
    server.fail_next("submit", mode, 1)
    n, before = len(server.reports), server.count("submit")
    with pytest.raises(ReportError) as e:
        client.submit(report_xml())
    assert e.value.code == "ambiguous_outcome"
    assert "not retrying" in e.value.message
    assert server.count("submit") <= before + 1 and sleeps == []
    # "gateway" never reached NCMEC; "lost" and "hang" did open a report.
    assert len(server.reports) == n + (0 if mode == "gateway" else 1)


def test_finish_answer_lost_is_retried_and_reports_already_finished(
    server: CyberTipServer,
) -> None:
    client, _ = make_client(server)
    rid = client.submit(report_xml()).report_id
    server.fail_next("finish", "lost", 1)
    with pytest.raises(ReportError) as e:
        client.finish(rid)
    assert e.value.code == "already_finished"
    assert server.reports[rid].status == "finished"


def test_connection_refused_is_retried_even_for_submit() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    sleeps = Sleeps()
    client = CyberTiplineClient(
        CyberTipConfig(
            base_url=f"http://127.0.0.1:{port}/ispws", username="u", password="p", retries=2
        ),
        sleep=sleeps,
    )
    with pytest.raises(ReportError) as e:
        client.submit(report_xml())
    assert e.value.code == "transient" and len(sleeps) == 2


def test_hostile_answer_is_refused(server: CyberTipServer) -> None:
    client, _ = make_client(server, retries=0)
    server.fail_next("status", "hostile", 1)
    with pytest.raises(ReportError) as e:
        client.status()
    assert e.value.code == "bad_response" and "DOCTYPE" in e.value.message
    server.fail_next("submit", "hostile", 1)
    with pytest.raises(ReportError) as e:
        client.submit(report_xml())
    assert e.value.code == "ambiguous_outcome"


def test_unknown_report_id(server: CyberTipServer) -> None:
    client, _ = make_client(server)
    with pytest.raises(ReportError) as e:
        client.finish(999_999_999)
    assert e.value.code == "report_not_found" and e.value.response_code == 5001
    with pytest.raises(ReportError) as e:
        client.upload(999_999_999, b"x", "x.bin")
    assert e.value.code == "report_not_found"


def test_environment_configuration(tmp_path: Path) -> None:
    cfg = CyberTipConfig.from_env({})
    assert cfg.environment == "test" and cfg.base_url == TEST_URL
    with pytest.raises(ReportError) as e:
        CyberTipConfig.from_env({"SENTINELLE_CYBERTIP_ENV": "production"})
    assert e.value.code == "production_not_configured"
    with pytest.raises(ReportError) as e:
        CyberTipConfig.from_env({"SENTINELLE_CYBERTIP_URL": PRODUCTION_URL})
    assert e.value.code == "production_not_configured"
    with pytest.raises(ReportError) as e:
        CyberTipConfig.from_env({"SENTINELLE_CYBERTIP_ENV": "staging"})
    assert e.value.code == "bad_config"
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    prod = CyberTipConfig.from_env(
        {
            "SENTINELLE_CYBERTIP_ENV": "production",
            "SENTINELLE_CYBERTIP_USERNAME": "esp",
            "SENTINELLE_CYBERTIP_PASSWORD_FILE": str(pw),
        }
    )
    assert prod.base_url == PRODUCTION_URL and prod.password == "s3cret"
    assert "s3cret" not in repr(prod)
    with pytest.raises(ReportError) as e:
        CyberTipConfig.from_env({"SENTINELLE_CYBERTIP_PASSWORD_FILE": str(tmp_path / "nope")})
    assert e.value.code == "bad_config"
