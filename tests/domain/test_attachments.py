"""Attachments: file names, content sniffing and the lifecycle, with the events each step records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casem.domain.attachments import (
    _RANK,
    DEFAULT_RETENTION,
    FILENAME_MAX,
    Attachment,
    AttachmentState,
    blob_key,
    sniff,
    validate_filename,
)
from casem.domain.errors import InvalidInput

SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def upload(**overrides: object) -> Attachment:
    fields: dict[str, object] = dict(
        id="a1",
        org_id="o1",
        case_id="c1",
        filename="disk.log",
        content_type="text/plain",
        size=12,
        sha256=SHA,
        uploaded_by_id="u1",
    )
    fields.update(overrides)
    return Attachment.upload(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["disk.log", "report (1).pdf", "...", "x" * FILENAME_MAX, "naïve ☃.txt"])
def test_good_file_names(name: str) -> None:
    assert validate_filename(name) == name


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        (None, "an attachment needs a file name"),
        ("", "an attachment needs a file name"),
        ("   ", "an attachment needs a file name"),
        (".", "an attachment needs a file name"),
        ("..", "an attachment needs a file name"),
        ("../etc/passwd", "file name must be at most 255 characters, without slashes"),
        ("a\\b.txt", "file name must be at most 255 characters, without slashes"),
        ("line\nbreak.txt", "file name must be at most 255 characters, without slashes"),
        ("nul\x00.txt", "file name must be at most 255 characters, without slashes"),
        ("x" * (FILENAME_MAX + 1), "file name must be at most 255 characters, without slashes"),
    ],
)
def test_bad_file_names(name: object, detail: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_filename(name)
    assert (raised.value.detail, raised.value.pointer) == (detail, "/file")


def test_uploading_records_the_upload_on_the_case() -> None:
    attachment = upload(retention=timedelta(days=7))
    assert attachment.state == "uploaded" and attachment.live and not attachment.downloadable
    assert attachment.blob_key == blob_key("o1", "c1", "a1") == "o1/c1/a1"
    assert attachment.expires_at == attachment.created_at + timedelta(days=7)
    default = upload()
    assert default.expires_at - default.created_at == DEFAULT_RETENTION
    [event] = attachment.collect_events()
    assert (event.type, event.actor_id, event.subject_id, event.case_id, event.org_id) == (
        "case.attachment_uploaded",
        "u1",
        "c1",
        "c1",
        "o1",
    )
    assert event.time == attachment.created_at
    assert event.data == {
        "attachment_id": "a1",
        "filename": "disk.log",
        "content_type": "text/plain",
        "size": 12,
        "sha256": SHA,
    }


def test_a_bad_name_is_refused_at_upload() -> None:
    with pytest.raises(InvalidInput):
        upload(filename="a/b")


def test_the_happy_path_records_each_step_once() -> None:
    attachment = upload()
    attachment.collect_events()
    assert not attachment.make_available()  # not verified yet: never served
    assert attachment.verify() and not attachment.verify()
    assert attachment.make_available() and not attachment.make_available()
    assert attachment.downloadable
    assert not attachment.expire(attachment.expires_at - timedelta(seconds=1))
    assert attachment.expire(attachment.expires_at) and not attachment.expire(attachment.expires_at)
    assert not attachment.live and not attachment.downloadable
    assert attachment.delete(None, "retention") and not attachment.delete(None, "again")
    events = attachment.collect_events()
    assert [e.type for e in events] == [
        "case.attachment_verified",
        "case.attachment_available",
        "case.attachment_expired",
        "case.attachment_deleted",
    ]
    assert all(e.actor_id is None for e in events)
    assert events[-1].data["detail"] == "retention" and "detail" not in events[0].data
    assert attachment.deleted_at == attachment.modified_at and attachment.detail == "retention"


def test_a_rejected_file_is_never_served() -> None:
    attachment = upload()
    attachment.collect_events()
    assert attachment.reject("content does not look like image/png")
    assert attachment.state == "rejected" and not attachment.live
    assert not attachment.verify() and not attachment.make_available()
    assert attachment.delete("u2", "rejected file cleaned up")
    rejected, deleted = attachment.collect_events()
    assert rejected.type == "case.attachment_rejected"
    assert rejected.data["detail"] == "content does not look like image/png"
    assert (deleted.type, deleted.actor_id) == ("case.attachment_deleted", "u2")


def test_a_verified_file_is_not_rejected_and_an_available_one_expires_only_in_time() -> None:
    attachment = upload()
    attachment.verify()
    assert not attachment.reject("late verdict")
    assert not attachment.expire(attachment.expires_at + timedelta(days=1))  # only an available file expires
    assert attachment.state == "verified"


def test_a_user_deletes_a_live_file_at_any_step() -> None:
    for steps in ([], ["verify"], ["verify", "make_available"]):
        attachment = upload()
        for step in steps:
            getattr(attachment, step)()
        attachment.collect_events()
        assert attachment.delete("u3", "deleted by user")
        [event] = attachment.collect_events()
        assert (event.type, event.actor_id, event.data["detail"]) == (
            "case.attachment_deleted",
            "u3",
            "deleted by user",
        )


operations = st.lists(st.sampled_from(["verify", "reject", "make_available", "expire", "delete"]), max_size=8)


@given(operations)
def test_every_step_that_succeeds_records_exactly_one_event_and_never_goes_back(steps: list[str]) -> None:
    attachment = upload()
    attachment.collect_events()
    verified = False
    for step in steps:
        before = AttachmentState(attachment.state)
        if step == "reject":
            moved = attachment.reject("bad")
        elif step == "expire":
            moved = attachment.expire(attachment.expires_at)
        elif step == "delete":
            moved = attachment.delete(None, "gone")
        else:
            moved = getattr(attachment, step)()
        after = AttachmentState(attachment.state)
        events = attachment.collect_events()
        assert len(events) == (1 if moved else 0)
        if moved:
            assert _RANK[after] > _RANK[before] and events[0].type == f"case.attachment_{after.value}"
        else:
            assert after == before
        verified = verified or after == AttachmentState.VERIFIED
        if attachment.downloadable:
            assert verified  # only a verified file is ever served


# -- sniffing --------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20


@pytest.mark.parametrize(
    ("head", "declared", "size", "verdict"),
    [
        (PNG, "image/png", 28, None),
        (b"\xff\xd8\xff\xe0", "image/jpeg", 4, None),
        (b"GIF89a...", "image/gif", 9, None),
        (b"%PDF-1.7", "application/pdf", 8, None),
        (b"PK\x03\x04", "application/zip", 4, None),
        (b"\x1f\x8b\x08", "application/gzip", 3, None),
        (b"hello", "image/png", 5, "content does not look like image/png"),
        (b"", "image/png", 0, "content does not look like image/png"),
        (PNG, "application/pdf", 28, "content does not look like application/pdf"),
        (b"\x7fELF\x02\x01", "application/octet-stream", 6, "executable content is not accepted"),
        (b"MZ\x90\x00", "image/png", 4, "executable content is not accepted"),
        (b"#!/bin/sh\nrm -rf /", "text/plain", 18, "executable content is not accepted"),
        (b"\xcf\xfa\xed\xfe", "application/zip", 4, "executable content is not accepted"),
        (b"anything at all", "application/octet-stream", 15, None),
        (b"anything at all", "video/mp4", 15, None),  # no rule for it: the allow-list decides
        (b"a,b\n1,2\n", "text/csv", 8, None),
        ('{"k": "é"}'.encode(), "application/json", 11, None),
        (b"text\x00with nul", "text/plain", 13, "binary content declared as text/plain"),
        (b"\xff\xfe\x00t\x00e\x00x\x00t", "text/plain", 10, "binary content declared as text/plain"),
        (b"caf\xe9 au lait", "text/plain", 12, "content declared as text/plain is not UTF-8 text"),
    ],
)
def test_sniff(head: bytes, declared: str, size: int, verdict: str | None) -> None:
    assert sniff(head, declared, size) == verdict


def test_a_character_cut_at_the_end_of_the_head_is_fine() -> None:
    text = ("x" * 4094 + "☃").encode()  # the snowman's 3 bytes straddle the 4096-byte head
    head = text[:4096]
    assert sniff(head, "text/plain", len(text)) is None


def test_the_end_of_a_whole_file_must_be_utf8_too() -> None:
    # When the head is the whole file nothing was cut: bad bytes at its end are not text.
    assert sniff(b"hello\xff", "text/plain", 6) == "content declared as text/plain is not UTF-8 text"
    assert sniff(b"hello\xe2\x98", "text/plain", 7) == "content declared as text/plain is not UTF-8 text"
    # An invalid byte is invalid even before the end of a longer file.
    assert sniff(b"hello\xff", "text/plain", 10_000) == "content declared as text/plain is not UTF-8 text"


@given(st.text(max_size=200), st.integers(min_value=0, max_value=8))
def test_valid_utf8_text_passes_wherever_the_head_is_cut(text: str, extra: int) -> None:
    data = b" " + text.replace("\x00", "").encode()  # the leading blank: no text starts like an executable
    cut = max(0, len(data) - extra)
    assert sniff(data[:cut], "text/plain", len(data)) is None
