"""Attachments over HTTP: multipart upload streamed to storage, list, get, download, delete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.app.attachments.service import AttachmentLimits
from casem.services.caseworker.activities import AttachmentRef, CaseworkerActivities
from casem.topology.tenants import CASE_MANAGEMENT
from tests.api.helpers import make_case, make_project
from tests.support.api_client import OrgClient

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 100


@pytest.fixture
def blobs(org: OrgClient, tmp_path: Path) -> FilesystemBlobStore:
    store = FilesystemBlobStore(tmp_path / "blobs")
    org.server.app.state.blobs = store
    org.server.app.state.attachment_limits = AttachmentLimits(max_bytes=100_000)
    return store


def url(case_id: str, suffix: str = "") -> str:
    return f"/api/v2/cases/{case_id}/attachments{suffix}"


def test_upload_list_download_delete(org: OrgClient, blobs: FilesystemBlobStore) -> None:
    case = make_case(org, make_project(org).id)
    answer = org.http.post(url(case.id), files={"file": ("shot.png", PNG, "image/png")}, data={"note": "ignored"})
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    attrs = data["attributes"]
    assert (attrs["filename"], attrs["size"], attrs["state"]) == ("shot.png", len(PNG), "uploaded")
    assert attrs["sha256"] == hashlib.sha256(PNG).hexdigest()
    # By key too, like every case route.
    listed = org.http.get(url(case.attributes.key)).json()["data"]
    assert [a["id"] for a in listed] == [data["id"]]

    # Not served before the caseworker has verified it.
    assert org.http.get(url(case.id, f"/{data['id']}/content")).status_code == 409
    activities = CaseworkerActivities(org.server.context, blobs)
    ref = AttachmentRef(CASE_MANAGEMENT, org.org_id, case.id, data["id"])

    async def verify() -> None:
        from temporalio.testing import ActivityEnvironment

        env = ActivityEnvironment()
        await env.run(activities.verify_attachment, ref)
        await env.run(activities.make_available, ref)

    org.server.call(verify())
    got = org.http.get(url(case.id, f"/{data['id']}/content"))
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert org.http.get(url(case.id, f"/{data['id']}")).json()["data"]["attributes"]["state"] == "available"

    assert org.http.delete(url(case.id, f"/{data['id']}")).status_code == 204
    assert org.http.get(url(case.id)).json()["data"] == []
    assert org.http.get(url(case.id, f"/{data['id']}")).status_code == 404
    assert blobs.root.joinpath(org.org_id, case.id, data["id"]).exists() is False


def test_limits_and_errors(org: OrgClient, other_org: OrgClient, blobs: FilesystemBlobStore) -> None:
    case = make_case(org, make_project(org).id)
    too_big = org.http.post(url(case.id), files={"file": ("big.bin", b"x" * 100_001, "application/octet-stream")})
    assert too_big.status_code == 413 and "100000 byte limit" in too_big.json()["errors"][0]["detail"]
    exe = org.http.post(url(case.id), files={"file": ("a.exe", b"MZ", "application/x-msdownload")})
    assert exe.status_code == 400
    assert org.http.post(url(case.id), data={"file": "not a file part"}).status_code == 400
    assert org.http.post(url(case.id), content=b"raw", headers={"content-type": "text/plain"}).status_code == 400
    # Nothing of the refused uploads stays in storage.
    assert org.server.call(blobs.list()) == []
    # Another org's case does not exist for this caller.
    assert other_org.http.post(url(case.id), files={"file": ("a.txt", b"hi", "text/plain")}).status_code == 404
    assert other_org.http.get(url(case.id)).status_code == 404


# -- the multipart boundary (each a server error or a stored partial file before) -------------------------

BOUNDARY = "casem-test-boundary"


def multipart(filename_param: str, content: bytes, *, close: bool = True) -> bytes:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nignored\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; {filename_param}\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode("utf-8", "surrogateescape") + content  # surrogateescape: raw bytes in a name
    return body + (f"\r\n--{BOUNDARY}--\r\n".encode() if close else b"")


def post_multipart(org: OrgClient, case_id: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return org.http.post(url(case_id), content=body, headers=headers)


async def _make_available(org: OrgClient, blobs: FilesystemBlobStore, case_id: str, attachment_id: str) -> None:
    from temporalio.testing import ActivityEnvironment

    activities = CaseworkerActivities(org.server.context, blobs)
    ref = AttachmentRef(CASE_MANAGEMENT, org.org_id, case_id, attachment_id)
    env = ActivityEnvironment()
    await env.run(activities.verify_attachment, ref)
    await env.run(activities.make_available, ref)


@pytest.mark.parametrize(
    "param",
    [
        'filename="r\u00e9sum\u00e9 \u20ac\u6f22.txt"',  # UTF-8 bytes in filename="...", as browsers send
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC%E6%BC%A2.txt",  # RFC 5987
    ],
)
def test_non_ascii_file_names_go_up_and_come_down_with_rfc_6266(
    org: OrgClient, blobs: FilesystemBlobStore, param: str
) -> None:
    name = "r\u00e9sum\u00e9 \u20ac\u6f22.txt"
    case = make_case(org, make_project(org).id)
    answer = post_multipart(org, case.id, multipart(param, b"hello"))
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    assert data["attributes"]["filename"] == name
    org.server.call(_make_available(org, blobs, case.id, data["id"]))
    got = org.http.get(url(case.id, f"/{data['id']}/content"))
    assert got.status_code == 200 and got.content == b"hello"
    disposition = got.headers["content-disposition"]
    assert disposition == (
        "attachment; filename=\"r_sum_ __.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC%E6%BC%A2.txt"
    )


def test_an_ascii_name_keeps_the_plain_form_and_loses_its_quotes(org: OrgClient, blobs: FilesystemBlobStore) -> None:
    case = make_case(org, make_project(org).id)
    answer = post_multipart(org, case.id, multipart('filename="a\\"b.txt"', b"x"))
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    org.server.call(_make_available(org, blobs, case.id, data["id"]))
    disposition = org.http.get(url(case.id, f"/{data['id']}/content")).headers["content-disposition"]
    assert disposition.startswith('attachment; filename="a_b.txt"') or "filename*=" in disposition


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"this is not multipart at all", "malformed"),
        (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n'.encode(), "no `file` part"),
        (multipart('filename="a.txt"', b"half of the fi", close=False), "truncated"),
        (multipart('filename="a.txt"', b"x" * 50_000, close=False)[:-10], "truncated"),
        (multipart('filename="caf\xe9.txt"'.encode("latin-1").decode("utf-8", "surrogateescape"), b"x"), "UTF-8"),
        (multipart("filename*=ISO-8859-1''caf%E9.txt", b"x"), "RFC 5987"),
        (b"--" + BOUNDARY.encode() + b"\r\nX: " + b"h" * 20_000 + b"\r\n\r\n", "malformed"),
    ],
)
def test_malformed_or_truncated_uploads_are_a_400_and_store_nothing(
    org: OrgClient, blobs: FilesystemBlobStore, body: bytes, fragment: str
) -> None:
    case = make_case(org, make_project(org).id)
    answer = post_multipart(org, case.id, body)
    assert answer.status_code == 400, answer.text
    [error] = answer.json()["errors"]
    assert fragment in error["detail"] and error["source"] == {"pointer": "/file"}
    assert org.http.get(url(case.id)).json()["data"] == []
    assert org.server.call(blobs.list()) == []
    assert not any(p.is_file() for p in blobs.root.rglob("*"))  # no partial file left behind either
