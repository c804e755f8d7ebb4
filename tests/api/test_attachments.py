"""Attachments over HTTP: multipart upload streamed to storage, list, get, download, delete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.app.attachments.service import AttachmentLimits
from casem.services.caseworker.activities import AttachmentRef, CaseworkerActivities
from casem.topology.tenants import CASE_MANAGEMENT
from tests.api.conftest import OrgClient
from tests.api.helpers import make_case, make_project

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
    assert too_big.status_code == 400 and "limit" in too_big.json()["errors"][0]["detail"]
    exe = org.http.post(url(case.id), files={"file": ("a.exe", b"MZ", "application/x-msdownload")})
    assert exe.status_code == 400
    assert org.http.post(url(case.id), data={"file": "not a file part"}).status_code == 400
    assert org.http.post(url(case.id), content=b"raw", headers={"content-type": "text/plain"}).status_code == 400
    # Nothing of the refused uploads stays in storage.
    assert org.server.call(blobs.list()) == []
    # Another org's case does not exist for this caller.
    assert other_org.http.post(url(case.id), files={"file": ("a.txt", b"hi", "text/plain")}).status_code == 404
    assert other_org.http.get(url(case.id)).status_code == 404
