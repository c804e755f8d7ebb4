"""Attachments: files on a case, and their lifecycle.

    uploaded -> verified -> available -> expired -> deleted
         +-> rejected -> deleted          (any live state) -> deleted (user delete, missing blob)

Each step is recorded as an event on the case, so the unit of work writes its outbox row and its
timeline cell. Every transition is idempotent (a repeated step records nothing): workflow activities
retry, and a retried step must not write a second timeline cell.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow

FILENAME_MAX = 255
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_RETENTION = timedelta(days=90)
# What may be uploaded unless configured otherwise: documents, images, logs and archives, no executables.
DEFAULT_CONTENT_TYPES = frozenset(
    {
        "text/plain",
        "text/csv",
        "application/json",
        "application/pdf",
        "application/zip",
        "application/gzip",
        "image/png",
        "image/jpeg",
        "image/gif",
        "application/octet-stream",
    }
)
_FILENAME = re.compile(r"^[^/\\\x00-\x1f]+$")


class AttachmentState(StrEnum):
    UPLOADED = "uploaded"
    VERIFIED = "verified"
    AVAILABLE = "available"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DELETED = "deleted"


# The order of the forward path: a step to an earlier state is a replay and does nothing.
_RANK = {
    AttachmentState.UPLOADED: 0,
    AttachmentState.VERIFIED: 1,
    AttachmentState.REJECTED: 1,
    AttachmentState.AVAILABLE: 2,
    AttachmentState.EXPIRED: 3,
    AttachmentState.DELETED: 4,
}


def validate_filename(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or name in {".", ".."}:
        raise InvalidInput("an attachment needs a file name", "/file")
    if len(name) > FILENAME_MAX or not _FILENAME.match(name):
        raise InvalidInput(f"file name must be at most {FILENAME_MAX} characters, without slashes", "/file")
    return name


def blob_key(org_id: str, case_id: str, attachment_id: str) -> str:
    return f"{org_id}/{case_id}/{attachment_id}"


@dataclass(eq=False)
class Attachment(EventRecorder):
    id: str
    org_id: str
    case_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    blob_key: str
    uploaded_by_id: str | None
    expires_at: datetime
    state: str = AttachmentState.UPLOADED.value
    detail: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None
    deleted_at: datetime | None = None

    @classmethod
    def upload(
        cls,
        *,
        id: str,
        org_id: str,
        case_id: str,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        uploaded_by_id: str | None,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> Attachment:
        now = utcnow()
        attachment = cls(
            id=id,
            org_id=org_id,
            case_id=case_id,
            filename=validate_filename(filename),
            content_type=content_type,
            size=size,
            sha256=sha256,
            blob_key=blob_key(org_id, case_id, id),
            uploaded_by_id=uploaded_by_id,
            expires_at=now + retention,
            created_at=now,
        )
        attachment._event(AttachmentState.UPLOADED, uploaded_by_id, now)
        return attachment

    @property
    def live(self) -> bool:
        """Still referenced by the case: its blob must exist."""
        return self.state in {AttachmentState.UPLOADED, AttachmentState.VERIFIED, AttachmentState.AVAILABLE}

    @property
    def downloadable(self) -> bool:
        return self.state == AttachmentState.AVAILABLE

    def _event(self, state: AttachmentState, actor_id: str | None, now: datetime, **extra: Any) -> None:
        self.record(
            DomainEvent(
                type=f"case.attachment_{state.value}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.case_id,
                case_id=self.case_id,
                time=now,
                data={
                    "attachment_id": self.id,
                    "filename": self.filename,
                    "content_type": self.content_type,
                    "size": self.size,
                    "sha256": self.sha256,
                    **extra,
                },
            )
        )

    def _move(self, state: AttachmentState, actor_id: str | None, detail: str | None = None) -> bool:
        current = AttachmentState(self.state)
        if current == state or _RANK[state] <= _RANK[current]:
            return False
        now = utcnow()
        self.state = state.value
        self.modified_at = now
        if detail is not None:
            self.detail = detail
        if state == AttachmentState.DELETED:
            self.deleted_at = now
        self._event(state, actor_id, now, **({"detail": detail} if detail else {}))
        return True

    def verify(self) -> bool:
        return self._move(AttachmentState.VERIFIED, None)

    def reject(self, reason: str) -> bool:
        return self._move(AttachmentState.REJECTED, None, reason)

    def make_available(self) -> bool:
        if self.state != AttachmentState.VERIFIED:
            return False  # only a verified file is ever served
        return self._move(AttachmentState.AVAILABLE, None)

    def expire(self, as_of: datetime) -> bool:
        if as_of < self.expires_at or self.state != AttachmentState.AVAILABLE:
            return False
        return self._move(AttachmentState.EXPIRED, None)

    def delete(self, actor_id: str | None, reason: str) -> bool:
        return self._move(AttachmentState.DELETED, actor_id, reason)


# -- content sniffing ------------------------------------------------------------------------------
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "application/gzip": (b"\x1f\x8b",),
}
_TEXT = {"text/plain", "text/csv", "application/json"}
# Executables are refused whatever they claim to be.
_EXECUTABLE = (b"\x7fELF", b"MZ", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"#!")


def sniff(head: bytes, declared: str, size: int) -> str | None:
    """Why the first bytes contradict the declared content type, or None when they agree."""
    if any(head.startswith(m) for m in _EXECUTABLE):
        return "executable content is not accepted"
    if declared in _MAGIC:
        if size == 0 or not any(head.startswith(m) for m in _MAGIC[declared]):
            return f"content does not look like {declared}"
    elif declared in _TEXT:
        if b"\x00" in head:
            return f"binary content declared as {declared}"
        try:
            # Not final while the head is shorter than the file: a character cut at its end is fine, a bad byte
            # anywhere (or a cut character at the end of the whole file) is not.
            codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) >= size)
        except UnicodeDecodeError:
            return f"content declared as {declared} is not UTF-8 text"
    return None
