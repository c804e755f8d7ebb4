"""Loopback receivers for notifications: a Twilio-compatible SMS/voice API (the subset in twilio_api_subset.json), a
push webhook receiver that checks casem's signature and honours its Idempotency-Key, and an SMTP server (aiosmtpd).
Each counts what it received, so tests count notifications where they arrive."""

from __future__ import annotations

import base64
import email.policy
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from casem.adapters.notify.push import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.support.ports import free_port

SPEC = json.loads((Path(__file__).parent / "twilio_api_subset.json").read_text())
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class TwilioLoopback:
    """Messages and Calls, as Twilio answers them: form POSTs with basic auth, 201 JSON, error JSON, list filters.

    `refuse_next`: how many next creates answer 429 (error 20429), to exercise retries."""

    account_sid: str = "AC" + "0" * 32
    auth_token: str = "token-" + "1" * 26
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    refuse_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> TwilioLoopback:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _error(self, code: int) -> None:
                known = SPEC["errors"][str(code)]
                self._answer(
                    known["status"],
                    {
                        "code": code,
                        "message": known["message"],
                        "more_info": SPEC["error_body"]["more_info"].format(code=code),
                        "status": known["status"],
                    },
                )

            def _resource(self) -> str | None:
                path = urlsplit(self.path).path
                prefix = f"/2010-04-01/Accounts/{loopback.account_sid}/"
                if not path.startswith(prefix):
                    return None
                name = path[len(prefix) :]
                return name if name in SPEC["resources"] else None

            def _authorised(self) -> bool:
                header = self.headers.get("Authorization", "")
                expected = base64.b64encode(f"{loopback.account_sid}:{loopback.auth_token}".encode()).decode()
                return header == f"Basic {expected}"

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                resource = self._resource()
                if resource is None:
                    return self._error(20404)
                if not self._authorised():
                    return self._error(20003)
                form = {
                    k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
                }
                with loopback.lock:
                    if loopback.refuse_next > 0:
                        loopback.refuse_next -= 1
                        return self._error(20429)
                    if not form.get("To"):
                        return self._error(21604)
                    if not E164.match(form["To"]):
                        return self._error(21211)
                    if resource == "Messages.json" and not form.get("Body"):
                        return self._error(21602)
                    if not form.get("From") and not form.get("MessagingServiceSid"):
                        return self._error(21212)
                    if resource == "Calls.json" and not (
                        form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")
                    ):
                        return self._error(21205)
                    self._answer(201, loopback._create(resource, form))

            def do_GET(self) -> None:  # noqa: N802
                resource = self._resource()
                if resource is None:
                    return self._error(20404)
                if not self._authorised():
                    return self._error(20003)
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                with loopback.lock:
                    found = loopback._list(resource, query)
                key = SPEC["resources"][resource]["GET"]["response"]["list_key"]
                uri = urlsplit(self.path).path
                self._answer(
                    200,
                    {key: found, "uri": self.path, "page": 0, "page_size": len(found), "first_page_uri": uri,
                     "next_page_uri": None, "previous_page_uri": None, "start": 0, "end": max(len(found) - 1, 0)},
                )  # fmt: skip

        self._server = _Server(Handler)
        return self

    def _create(self, resource: str, form: dict[str, str]) -> dict[str, Any]:
        spec = SPEC["resources"][resource]["POST"]
        now = format_datetime(datetime.now(UTC), usegmt=False)
        sid = spec["sid_prefix"] + uuid.uuid4().hex
        record: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "status": spec["initial_status"],
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "price": None,
            "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/{resource.removesuffix('.json')}/{sid}.json",
        }
        if resource == "Messages.json":
            record |= {"body": form["Body"], "num_segments": "1", "date_sent": None, "error_code": None,
                       "error_message": None, "subresource_uris": {}}  # fmt: skip
            self.messages.append(record)
        else:
            record |= {"start_time": None, "end_time": None, "duration": None, "twiml": form.get("Twiml")}
            self.calls.append(record)
        return record

    def _list(self, resource: str, query: dict[str, str]) -> list[dict[str, Any]]:
        items = self.messages if resource == "Messages.json" else self.calls
        since = query.get("DateSent>") or query.get("StartTime>")
        found = [i for i in items if "To" not in query or i["to"] == query["To"]]
        if since:
            day = datetime.fromisoformat(since).date()
            found = [i for i in found if parsedate_to_datetime(i["date_created"]).date() >= day]
        return list(found)

    @property
    def url(self) -> str:
        return self._server.url

    def env(self) -> dict[str, str]:
        return {
            "CASEM_TWILIO_API_URL": self.url,
            "CASEM_TWILIO_ACCOUNT_SID": self.account_sid,
            "CASEM_TWILIO_AUTH_TOKEN": self.auth_token,
            "CASEM_TWILIO_FROM": "+15005550006",
        }

    def stop(self) -> None:
        self._server.stop()


@dataclass
class PushReceiver:
    """casem's push webhook contract: a valid signature, and each Idempotency-Key acted on once."""

    secrets: list[str] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)  # every request, valid or not
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idempotency key, the first of each
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> PushReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signed = self.headers.get(SIGNATURE_HEADER, "")
                stamp = self.headers.get(TIMESTAMP_HEADER, "")
                key = self.headers.get(IDEMPOTENCY_HEADER, "")
                valid = any(verify(s, stamp, body, signed) for s in receiver.secrets)
                with receiver.lock:
                    receiver.raw.append({"key": key, "valid": valid, "body": json.loads(body)})
                    if valid and key not in receiver.delivered:
                        receiver.delivered[key] = json.loads(body)
                self.send_response(202 if valid else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = _Server(Handler)
        return self

    @property
    def url(self) -> str:
        return self._server.url + "/push"

    def stop(self) -> None:
        self._server.stop()


class SmtpSink:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrivals: list[tuple[float, str]] = []  # (perf_counter when accepted, subject)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        arrived = time.perf_counter()
        with self.lock:
            message = message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(message)
            self.arrivals.append((arrived, str(message["Subject"])))
        return "250 Message accepted for delivery"

    def by_idempotency_key(self) -> Counter[str]:
        with self.lock:
            return Counter(str(m["X-Casem-Idempotency-Key"]) for m in self.messages)


class SmtpReceiver:
    def __init__(self) -> None:
        self.sink = SmtpSink()
        self.port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def env(self) -> dict[str, str]:
        return {"CASEM_SMTP_HOST": "127.0.0.1", "CASEM_SMTP_PORT": str(self.port), "CASEM_SMTP_FROM": "pager@casem"}

    def stop(self) -> None:
        self.controller.stop()
