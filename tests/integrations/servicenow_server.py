"""A loopback ServiceNow instance implementing the subset of the Table API in specs/servicenow_table_api_subset.json:
incident, sys_user, sys_user_group, cmdb_ci_service and sys_journal_field tables; encoded queries; offset
pagination with X-Total-Count and Link headers; dot-walked fields (assigned_to.email); journal comments;
the resolution data policy; basic auth and OAuth client credentials; 429 with Retry-After; and the outbound
REST message casem's receiver expects (shared secret header), sent by a business rule on every change."""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.responses import JSONResponse, Response

from tests.integrations.loopback import LoopbackServer, SpecValidator, WebhookSender, load_spec

SPEC = load_spec("servicenow_table_api_subset.json")
TABLES = ("incident", "sys_user", "sys_user_group", "cmdb_ci_service", "sys_journal_field")
PRIORITY = {
    ("1", "1"): "1",
    ("1", "2"): "2",
    ("2", "1"): "2",
    ("1", "3"): "3",
    ("2", "2"): "3",
    ("3", "1"): "3",
    ("2", "3"): "4",
    ("3", "2"): "4",
    ("3", "3"): "5",
}
SECRET_HEADER = "X-Casem-Webhook-Secret"


def sn_time(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S")


def sys_id() -> str:
    return uuid.uuid4().hex


def _error(status: int, message: str, detail: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "detail": detail}, "status": "failure"}, status_code=status)


class ServiceNowLoopback(LoopbackServer):
    def __init__(self) -> None:
        super().__init__("servicenow-loopback")
        self.validator = SpecValidator(SPEC)
        self.tables: dict[str, dict[str, dict[str, str]]] = {t: {} for t in TABLES}
        self.passwords: dict[str, str] = {}
        self.oauth_clients: dict[str, tuple[str, str]] = {}  # client_id -> (secret, user_name it runs as)
        self.tokens: dict[str, str] = {}  # access token -> user_name
        self._number = 10000
        self.webhooks = WebhookSender(lambda secret, _raw: {"Content-Type": "application/json", SECRET_HEADER: secret})
        self.integration = self.add_user("casem.integration", "casem-bot@example.com", "casem integration", "bot-pass")
        self.human = self.add_user("beth.agent", "beth@example.com", "Beth Agent", "beth-pass")
        self.group = self.add_record("sys_user_group", {"name": "Network", "active": "true"})
        self.add_record("sys_user_group", {"name": "Database", "active": "true"})
        self.service = self.add_record("cmdb_ci_service", {"name": "Payments", "active": "true"})

    # -- setup ---------------------------------------------------------------------------------------------
    def add_record(self, table: str, values: dict[str, str], user: str = "admin") -> dict[str, str]:
        record = {"sys_id": sys_id(), "sys_created_on": sn_time(), "sys_created_by": user, **values}
        record.update(sys_updated_on=sn_time(), sys_updated_by=user, sys_mod_count="0")
        self.tables[table][record["sys_id"]] = record
        return record

    def add_user(self, user_name: str, email: str, name: str, password: str) -> dict[str, str]:
        self.passwords[user_name] = password
        return self.add_record("sys_user", {"user_name": user_name, "email": email, "name": name, "active": "true"})

    def add_oauth_client(self, runs_as: str) -> tuple[str, str]:
        client_id, client_secret = secrets.token_hex(8), secrets.token_hex(12)
        self.oauth_clients[client_id] = (client_secret, runs_as)
        return client_id, client_secret

    def register_outbound(self, url: str, secret: str) -> None:
        self.webhooks.targets.append((url, secret))

    def stop(self) -> None:
        self.webhooks.close()
        super().stop()

    def incident(self, key: str) -> dict[str, str]:
        """An incident by sys_id or number."""
        found = self.tables["incident"].get(key) or next(
            (r for r in self.tables["incident"].values() if r["number"] == key), None
        )
        assert found is not None, f"no incident {key}"
        return found

    def comments_of(self, incident_sys_id: str) -> list[dict[str, str]]:
        return sorted(
            (j for j in self.tables["sys_journal_field"].values() if j["element_id"] == incident_sys_id),
            key=lambda j: (j["sys_created_on"], j["sys_id"]),
        )

    # -- dispatch -------------------------------------------------------------------------------------------
    def _caller(self, headers: Any) -> str | None:
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            return user if self.passwords.get(user) == password else None
        if auth.startswith("Bearer "):
            return self.tokens.get(auth[7:])
        return None

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Response:
        if path == "/oauth_token.do" and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            client = self.oauth_clients.get(form.get("client_id", ""))
            if (
                form.get("grant_type") != "client_credentials"
                or client is None
                or client[0] != form.get("client_secret")
            ):
                return JSONResponse({"error": "access_denied", "error_description": "access_denied"}, status_code=401)
            token = secrets.token_hex(16)
            self.tokens[token] = client[1]
            return JSONResponse(
                {"access_token": token, "token_type": "Bearer", "expires_in": 1799, "scope": "useraccount"}
            )
        user = self._caller(headers)
        if user is None:
            return _error(401, "User Not Authenticated", "Required to provide Auth information")
        self.requests.append((method, path, user))
        match = re.fullmatch(r"/api/now(?:/v\d+)?/table/([a-z0-9_]+)(?:/([0-9a-f]{32}))?", path)
        if match is None:
            return _error(400, "Requested URI does not represent any resource", path)
        table, record_id = match.group(1), match.group(2)
        if table not in self.tables:
            return _error(400, "Invalid table " + table)
        if method == "GET" and record_id is None:
            return self._list(table, query)
        if method == "GET":
            record = self.tables[table].get(record_id)
            if record is None:
                return _error(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
            return JSONResponse({"result": self._shape(table, record, query.get("sysparm_fields"))})
        try:
            values = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "Exception while reading request", "The payload is not valid JSON.")
        if method == "POST" and record_id is None:
            self.writes[user] += 1
            return self._write(table, None, values, user)
        if method == "PATCH" and record_id is not None:
            self.writes[user] += 1
            if record_id not in self.tables[table]:
                return _error(404, "No Record found", "Record doesn't exist or ACL restricts the record update")
            return self._write(table, record_id, values, user)
        return _error(405, "Method not Supported", f"{method} is not supported for {path}")

    # -- reading ----------------------------------------------------------------------------------------------
    def _value(self, table: str, record: dict[str, str], name: str) -> str:
        if "." in name:  # dot-walking through a reference field
            ref, _, rest = name.partition(".")
            target = {"assigned_to": "sys_user", "assignment_group": "sys_user_group"}.get(ref)
            referenced = self.tables[target].get(record.get(ref, "")) if target else None
            return self._value(target, referenced, rest) if referenced and target else ""
        return record.get(name, "")

    def _shape(self, table: str, record: dict[str, str], fields: str | None) -> dict[str, str]:
        if not fields:
            return dict(record)
        return {name: self._value(table, record, name) for name in fields.split(",") if name}

    def _list(self, table: str, query: dict[str, str]) -> Response:
        try:
            conditions, order = parse_query(query.get("sysparm_query", ""))
        except ValueError as exc:
            return _error(400, "Invalid query", str(exc))
        rows = [
            r
            for r in self.tables[table].values()
            if all(c(lambda n, r=r: self._value(table, r, n)) for c in conditions)
        ]
        if order:
            name, descending = order
            rows.sort(key=lambda r: (self._value(table, r, name), r["sys_id"]), reverse=descending)
        limit = int(query.get("sysparm_limit", "10000"))
        offset = int(query.get("sysparm_offset", "0"))
        if limit < 1 or offset < 0:
            return _error(400, f"offset is {offset}", "Negative offset is not supported")
        page = rows[offset : offset + limit]
        base = {k: v for k, v in query.items() if k not in ("sysparm_offset",)}
        links = [f'<{self.url}/api/now/table/{table}?{urlencode({**base, "sysparm_offset": 0})}>;rel="first"']
        if offset + limit < len(rows):
            links.append(
                f'<{self.url}/api/now/table/{table}?{urlencode({**base, "sysparm_offset": offset + limit})}>;rel="next"'
            )
        result = [self._shape(table, r, query.get("sysparm_fields")) for r in page]
        return JSONResponse({"result": result}, headers={"X-Total-Count": str(len(rows)), "Link": ",".join(links)})

    # -- writing ---------------------------------------------------------------------------------------------
    def _write(self, table: str, record_id: str | None, values: Any, user: str) -> Response:
        if table == "incident":
            problems = self.validator.errors("IncidentWrite", values)
            if problems:
                return _error(400, "Invalid field values", "; ".join(problems))
        if not isinstance(values, dict):
            return _error(400, "Exception while reading request", "the body must be a JSON object")
        record = (
            dict(self.tables[table][record_id])
            if record_id
            else {"sys_id": sys_id(), "sys_created_on": sn_time(), "sys_created_by": user}
        )
        comment = values.pop("comments", None)
        values.pop("work_notes", None)
        if table == "incident":
            for ref, target in (("assignment_group", "sys_user_group"), ("assigned_to", "sys_user")):
                if values.get(ref) and values[ref] not in self.tables[target]:
                    return _error(400, "Invalid reference", f"{ref}: no {target} record {values[ref]}")
            merged = {**record, **values}
            if merged.get("state") in ("6", "7") and not (merged.get("close_code") and merged.get("close_notes")):
                return _error(
                    403,
                    "Operation Failed",
                    "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes",
                )
        changed = {k: v for k, v in values.items() if record.get(k) != v}
        record.update(values)
        if table == "incident":
            if not record_id:
                self._number += 1
                record.setdefault("number", f"INC{self._number:07d}")
                record.setdefault("state", "1")
                record.setdefault("impact", "3")
                record.setdefault("urgency", "3")
            record["priority"] = PRIORITY[(record["impact"], record["urgency"])]
        if changed or not record_id or comment:
            record["sys_updated_on"] = sn_time()
            record["sys_updated_by"] = user
            record["sys_mod_count"] = str(int(record.get("sys_mod_count", "-1")) + 1)
        self.tables[table][record["sys_id"]] = record
        if table == "incident":
            if changed or not record_id:
                self._outbound("incident.updated" if record_id else "incident.inserted", record)
            if comment:
                journal = self.add_record(
                    "sys_journal_field",
                    {"element_id": record["sys_id"], "element": "comments", "name": "incident", "value": str(comment)},
                    user=user,
                )
                self._outbound("comment.added", record, journal)
        return JSONResponse({"result": dict(record)}, status_code=200 if record_id else 201)

    def _outbound(self, event: str, record: dict[str, str], journal: dict[str, str] | None = None) -> None:
        """The business rule's REST message (see docs/integrations.md)."""
        assignee = self.tables["sys_user"].get(record.get("assigned_to", ""))
        message: dict[str, Any] = {
            "event": event,
            "table": "incident",
            "sys_id": record["sys_id"],
            "number": record["number"],
            "sys_mod_count": record["sys_mod_count"],
            "sys_updated_on": record["sys_updated_on"],
            "sys_updated_by": record["sys_updated_by"],
            "record": {
                "state": record.get("state", ""),
                "impact": record.get("impact", ""),
                "urgency": record.get("urgency", ""),
                "priority": record.get("priority", ""),
                "short_description": record.get("short_description", ""),
                "description": record.get("description", ""),
                "assigned_to_email": assignee["email"] if assignee else "",
                "due_date": record.get("due_date", ""),
                "correlation_id": record.get("correlation_id", ""),
            },
        }
        if journal is not None:
            author = next(
                (u for u in self.tables["sys_user"].values() if u["user_name"] == journal["sys_created_by"]), None
            )
            message["comment"] = {
                "sys_id": journal["sys_id"],
                "value": journal["value"],
                "sys_created_by": journal["sys_created_by"],
                "sys_created_on": journal["sys_created_on"],
                "author_email": author["email"] if author else "",
            }
        self.validator.check("OutboundMessage", message)
        self.webhooks.send(message)


def parse_query(query: str) -> tuple[list[Any], tuple[str, bool] | None]:
    """The encoded query subset: conditions joined by ^, then ORDERBY / ORDERBYDESC."""
    conditions = []
    order = None
    for part in [p for p in query.split("^") if p]:
        if part.startswith("ORDERBYDESC"):
            order = (part[len("ORDERBYDESC") :], True)
            continue
        if part.startswith("ORDERBY"):
            order = (part[len("ORDERBY") :], False)
            continue
        m = re.fullmatch(r"([a-z0-9_.]+)(!=|>=|<=|=|>|<|IN|STARTSWITH)(.*)", part)
        if m is None:
            raise ValueError(f"cannot read the condition {part!r}")
        name, op, value = m.groups()
        if op == "IN":
            allowed = set(value.split(","))
            conditions.append(lambda get, name=name, allowed=allowed: get(name) in allowed)
        elif op == "STARTSWITH":
            conditions.append(lambda get, name=name, value=value: get(name).startswith(value))
        else:
            compare = {
                "=": lambda a, b: a == b,
                "!=": lambda a, b: a != b,
                ">": lambda a, b: a > b,
                ">=": lambda a, b: a >= b,
                "<": lambda a, b: a < b,
                "<=": lambda a, b: a <= b,
            }[op]
            conditions.append(lambda get, name=name, value=value, compare=compare: compare(get(name), value))
    return conditions, order
