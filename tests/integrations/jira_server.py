"""A loopback Jira Cloud site implementing the subset of REST API v3 in specs/jira_cloud_v3_subset.json:
validated requests, ErrorCollection errors, issues with a workflow (transitions), comments, changelogs,
JQL search with token pagination, user search, OAuth 2.0 (3LO) tokens, 429 with Retry-After, and signed
webhooks (X-Hub-Signature) for issue and comment events. Webhook payloads use the REST v2 representation
(plain-text bodies and descriptions), as Jira Cloud sends them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from casem.adapters.integrations.jira import adf_to_text
from tests.integrations.loopback import LoopbackServer, SpecValidator, WebhookSender, load_spec

SPEC = load_spec("jira_cloud_v3_subset.json")
STATUSES = {  # name -> (id, category)
    "To Do": ("10000", "new"),
    "In Progress": ("3", "indeterminate"),
    "In Review": ("10001", "indeterminate"),
    "Done": ("10002", "done"),
}
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done", "41": "In Review"}
PRIORITIES = {"1": "Highest", "2": "High", "3": "Medium", "4": "Low", "5": "Lowest"}
SETTABLE = {"project", "issuetype", "summary", "description", "priority", "assignee", "labels", "duedate"}
CUSTOM_FIELD = re.compile(r"^customfield_\d+$")


def jira_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


@dataclass
class JiraUser:
    account_id: str
    email: str
    display_name: str
    token: str

    def bean(self) -> dict[str, Any]:
        return {
            "accountId": self.account_id,
            "emailAddress": self.email,
            "displayName": self.display_name,
            "active": True,
        }


@dataclass
class Issue:
    id: str
    key: str
    project: dict[str, str]
    issuetype_id: str
    summary: str
    description: dict[str, Any] | None
    status: str = "To Do"
    priority: str | None = "Medium"
    assignee: str | None = None
    duedate: str | None = None
    labels: list[str] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    comments: list[dict[str, Any]] = field(default_factory=list)
    histories: list[dict[str, Any]] = field(default_factory=list)


def _error(status: int, *messages: str, **fields: str) -> JSONResponse:
    return JSONResponse({"errorMessages": list(messages), "errors": fields}, status_code=status)


class JiraLoopback(LoopbackServer):
    def __init__(self) -> None:
        super().__init__("jira-loopback")
        self.validator = SpecValidator(SPEC)
        self.users: dict[str, JiraUser] = {}
        self.projects = {"10000": {"id": "10000", "key": "OPS", "name": "Operations"}}
        self.issue_types = {"10001": "Task", "10002": "Bug"}
        self.issues: dict[str, Issue] = {}
        self.keys: dict[str, str] = {}
        self._next_id = 10000
        self._numbers: dict[str, int] = {}
        self._next_comment = 20000
        self._next_changelog = 30000
        self.webhooks = WebhookSender(self._sign)
        self.deleted: list[str] = []
        # OAuth 2.0 (3LO)
        self.cloud_id = str(uuid.uuid4())
        self.oauth_client = ("casem-app", "app-secret")
        self.codes: dict[str, str] = {}  # code -> accountId
        self.access_tokens: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.integration = self.add_user("casem-bot@example.com", "casem integration")
        self.human = self.add_user("carol@example.com", "Carol")

    # -- setup ---------------------------------------------------------------------------------------------
    def add_user(self, email: str, name: str) -> JiraUser:
        user = JiraUser(f"acc-{uuid.uuid4().hex[:12]}", email, name, secrets.token_hex(12))
        self.users[user.account_id] = user
        return user

    def register_webhook(self, url: str, secret: str) -> None:
        self.webhooks.targets.append((url, secret))

    def grant_code(self, user: JiraUser) -> str:
        code = secrets.token_hex(8)
        self.codes[code] = user.account_id
        return code

    def stop(self) -> None:
        self.webhooks.close()
        super().stop()

    @staticmethod
    def _sign(secret: str, raw: bytes) -> dict[str, str]:
        digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json",
            "X-Hub-Signature": f"sha256={digest}",
            "X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
        }

    # -- representation -------------------------------------------------------------------------------------
    def _status(self, name: str) -> dict[str, Any]:
        sid, category = STATUSES[name]
        return {"id": sid, "name": name, "statusCategory": {"key": category, "name": category}}

    def _user_bean(self, account_id: str | None) -> dict[str, Any] | None:
        return self.users[account_id].bean() if account_id in self.users else None

    def _comment_bean(self, issue: Issue, comment: dict[str, Any], *, v2: bool = False) -> dict[str, Any]:
        return {
            "id": comment["id"],
            "self": f"{self.url}/rest/api/3/issue/{issue.id}/comment/{comment['id']}",
            "author": self._user_bean(comment["author"]),
            "updateAuthor": self._user_bean(comment.get("update_author", comment["author"])),
            "body": adf_to_text(comment["body"]) if v2 else comment["body"],
            "created": jira_time(comment["created"]),
            "updated": jira_time(comment["updated"]),
        }

    def bean(
        self, issue: Issue, fields: set[str] | None = None, expand: set[str] | None = None, *, v2: bool = False
    ) -> dict[str, Any]:
        everything: dict[str, Any] = {
            "summary": issue.summary,
            "description": (adf_to_text(issue.description) if v2 else issue.description) if issue.description else None,
            "status": self._status(issue.status),
            "priority": {"id": next(k for k, v in PRIORITIES.items() if v == issue.priority), "name": issue.priority}
            if issue.priority
            else None,
            "assignee": self._user_bean(issue.assignee),
            "duedate": issue.duedate,
            "labels": list(issue.labels),
            "project": dict(issue.project),
            "issuetype": {"id": issue.issuetype_id, "name": self.issue_types[issue.issuetype_id]},
            "created": jira_time(issue.created),
            "updated": jira_time(issue.updated),
            "comment": {
                "comments": [self._comment_bean(issue, c, v2=v2) for c in issue.comments],
                "total": len(issue.comments),
                "maxResults": len(issue.comments),
                "startAt": 0,
            },
            **issue.custom,
        }
        if fields is not None and "*all" not in fields:
            everything = {k: v for k, v in everything.items() if k in fields}
        bean: dict[str, Any] = {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.url}/rest/api/3/issue/{issue.id}",
            "fields": everything,
        }
        if expand and "changelog" in expand:
            bean["changelog"] = {
                "histories": list(issue.histories),
                "total": len(issue.histories),
                "startAt": 0,
                "maxResults": len(issue.histories),
            }
        return bean

    # -- dispatch -------------------------------------------------------------------------------------------
    def _caller(self, headers: Any) -> JiraUser | None:
        auth = headers.get("authorization", "")
        if auth.startswith("Basic "):
            try:
                email, _, token = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            return next((u for u in self.users.values() if u.email == email and u.token == token), None)
        if auth.startswith("Bearer "):
            account = self.access_tokens.get(auth[7:])
            return self.users.get(account) if account else None
        return None

    def handle(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Response:
        if path == "/oauth/token" and method == "POST":
            return self._oauth_token(body)
        if path == "/oauth/token/accessible-resources" and method == "GET":
            user = self._caller(headers)
            if user is None:
                return _error(401, "Unauthorized")
            return JSONResponse([{"id": self.cloud_id, "url": self.url, "name": "loopback", "scopes": []}])
        prefix = f"/ex/jira/{self.cloud_id}"
        if path.startswith("/ex/jira/"):
            if not path.startswith(prefix):
                return _error(404, "Site not found")
            path = path[len(prefix) :]
        user = self._caller(headers)
        if user is None:
            return _error(401, "You are not authenticated. Authentication required to perform this operation.")
        self.requests.append((method, path, user.account_id))
        document: Any = None
        if body:
            try:
                document = json.loads(body)
            except ValueError:
                return _error(400, "Unexpected character in the request body: it is not JSON.")
        if method in ("POST", "PUT") and path != "/rest/api/3/search/jql":
            self.writes[user.account_id] += 1
        return self._route(method, path, query, document, user)

    def _route(self, method: str, path: str, query: dict[str, str], doc: Any, user: JiraUser) -> Response:
        if path == "/rest/api/3/myself" and method == "GET":
            return JSONResponse(user.bean())
        if path == "/rest/api/3/issue" and method == "POST":
            return self._create(doc, user)
        if path == "/rest/api/3/search/jql" and method == "POST":
            return self._search(doc)
        if path == "/rest/api/3/user/search" and method == "GET":
            needle = query.get("query", "").lower()
            return JSONResponse(
                [
                    u.bean()
                    for u in self.users.values()
                    if needle and (needle in u.email.lower() or needle in u.display_name.lower())
                ]
            )
        match = re.fullmatch(r"/rest/api/3/issue/([^/]+)(/transitions|/comment)?", path)
        if match is None:
            return _error(404, f"No resource at {path}")
        issue = self.issues.get(match.group(1)) or self.issues.get(self.keys.get(match.group(1), ""))
        if issue is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        tail = match.group(2)
        if tail is None and method == "GET":
            fields = set(query["fields"].split(",")) if query.get("fields") else None
            expand = set(query["expand"].split(",")) if query.get("expand") else None
            return JSONResponse(self.bean(issue, fields, expand))
        if tail is None and method == "PUT":
            return self._edit(issue, doc, user)
        if tail is None and method == "DELETE":
            del self.issues[issue.id]
            del self.keys[issue.key]
            self.webhooks.send(
                {**self._issue_event("jira:issue_deleted", issue, user), "issue_event_type_name": "issue_deleted"}
            )
            return Response(status_code=204)
        if tail == "/transitions" and method == "GET":
            return JSONResponse(
                {
                    "transitions": [
                        {"id": tid, "name": name, "to": self._status(name)} for tid, name in TRANSITIONS.items()
                    ]
                }
            )
        if tail == "/transitions" and method == "POST":
            problems = self.validator.errors("IssueTransitionRequest", doc)
            if problems:
                return _error(400, *problems)
            target = TRANSITIONS.get(doc["transition"]["id"])
            if target is None:
                return _error(400, "Transition id '{}' is not valid for this issue.".format(doc["transition"]["id"]))
            self._change(issue, user, [("status", issue.status, target)])
            issue.status = target
            return Response(status_code=204)
        if tail == "/comment" and method == "POST":
            problems = self.validator.errors("CommentRequest", doc)
            if problems:
                return _error(400, *problems)
            return self._comment(issue, doc["body"], user)
        return _error(405, f"{method} is not allowed on {path}")

    # -- operations ------------------------------------------------------------------------------------------
    def _fields_errors(self, fields: dict[str, Any], *, creating: bool) -> dict[str, str]:
        errors: dict[str, str] = {}
        for name in fields:
            if name not in SETTABLE and not CUSTOM_FIELD.match(name):
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        if creating:
            project = fields.get("project") or {}
            if not any(p["id"] == project.get("id") or p["key"] == project.get("key") for p in self.projects.values()):
                errors["project"] = "valid project is required"
            if (fields.get("issuetype") or {}).get("id") not in self.issue_types:
                errors["issuetype"] = "valid issue type is required"
            if not str(fields.get("summary") or "").strip():
                errors["summary"] = "You must specify a summary of the issue."
        if "priority" in fields and (fields["priority"] or {}).get("name") not in PRIORITIES.values():
            errors["priority"] = "The priority selected is invalid."
        assignee = fields.get("assignee")
        if isinstance(assignee, dict) and assignee.get("accountId") not in (None, *self.users):
            errors["assignee"] = "User does not exist or you do not have permission to see it."
        return errors

    def _create(self, doc: Any, user: JiraUser) -> Response:
        problems = self.validator.errors("IssueUpdateDetails", doc)
        if problems:
            return _error(400, *problems)
        fields = doc.get("fields") or {}
        errors = self._fields_errors(fields, creating=True)
        if errors:
            return _error(400, **errors)
        project = next(
            p
            for p in self.projects.values()
            if p["id"] == fields["project"].get("id") or p["key"] == fields["project"].get("key")
        )
        self._next_id += 1
        number = self._numbers.get(project["key"], 0) + 1
        self._numbers[project["key"]] = number
        assignee = fields.get("assignee")
        issue = Issue(
            id=str(self._next_id),
            key=f"{project['key']}-{number}",
            project=dict(project),
            issuetype_id=fields["issuetype"]["id"],
            summary=fields["summary"],
            description=fields.get("description"),
            priority=(fields.get("priority") or {}).get("name") or "Medium",
            assignee=assignee.get("accountId") if isinstance(assignee, dict) else None,
            duedate=fields.get("duedate"),
            labels=list(fields.get("labels") or []),
            custom={k: v for k, v in fields.items() if CUSTOM_FIELD.match(k)},
        )
        self.issues[issue.id] = issue
        self.keys[issue.key] = issue.id
        self.webhooks.send(
            {**self._issue_event("jira:issue_created", issue, user), "issue_event_type_name": "issue_created"}
        )
        created = {"id": issue.id, "key": issue.key, "self": f"{self.url}/rest/api/3/issue/{issue.id}"}
        self.validator.check("CreatedIssue", created)
        return JSONResponse(created, status_code=201)

    def _edit(self, issue: Issue, doc: Any, user: JiraUser) -> Response:
        problems = self.validator.errors("IssueUpdateDetails", doc)
        if problems:
            return _error(400, *problems)
        fields = (doc or {}).get("fields") or {}
        errors = self._fields_errors(fields, creating=False)
        if errors:
            return _error(400, **errors)
        items = []
        for name, value in fields.items():
            if name == "summary":
                items.append(("summary", issue.summary, value))
                issue.summary = value
            elif name == "description":
                items.append(("description", adf_to_text(issue.description), adf_to_text(value)))
                issue.description = value
            elif name == "priority":
                items.append(("priority", issue.priority, value["name"]))
                issue.priority = value["name"]
            elif name == "assignee":
                new = value.get("accountId") if isinstance(value, dict) else None
                items.append(("assignee", issue.assignee, new))
                issue.assignee = new
            elif name == "duedate":
                items.append(("duedate", issue.duedate, value))
                issue.duedate = value
            elif name == "labels":
                items.append(("labels", " ".join(issue.labels), " ".join(value)))
                issue.labels = list(value)
            else:
                items.append((name, json.dumps(issue.custom.get(name)), json.dumps(value)))
                issue.custom[name] = value
        self._change(issue, user, items)
        return Response(status_code=204)

    def _change(self, issue: Issue, user: JiraUser, items: list[tuple[str, Any, Any]]) -> None:
        """Record a changelog entry and send jira:issue_updated (only for real changes)."""
        changed = [(f, old, new) for f, old, new in items if old != new]
        if not changed:
            return
        now = datetime.now(UTC)
        issue.updated = now
        self._next_changelog += 1
        details = []
        for name, old, new in changed:
            entry = {
                "field": name,
                "fieldtype": "jira",
                "fieldId": name,
                "from": None,
                "fromString": old,
                "to": None,
                "toString": new,
            }
            if name == "status":
                entry["from"], entry["to"] = STATUSES[old][0], STATUSES[new][0]
            if name == "assignee":
                entry["from"], entry["to"] = old, new
                entry["fromString"] = self.users[old].display_name if old in self.users else None
                entry["toString"] = self.users[new].display_name if new in self.users else None
            details.append(entry)
        history = {"id": str(self._next_changelog), "author": user.bean(), "created": jira_time(now), "items": details}
        issue.histories.append(history)
        event = self._issue_event("jira:issue_updated", issue, user)
        event["issue_event_type_name"] = "issue_generic"
        event["changelog"] = {"id": history["id"], "items": details}
        self.webhooks.send(event)

    def _comment(self, issue: Issue, body: dict[str, Any], user: JiraUser) -> Response:
        now = datetime.now(UTC)
        self._next_comment += 1
        comment = {
            "id": str(self._next_comment),
            "author": user.account_id,
            "body": body,
            "created": now,
            "updated": now,
        }
        issue.comments.append(comment)
        issue.updated = now
        self.webhooks.send(
            {
                "timestamp": int(now.timestamp() * 1000),
                "webhookEvent": "comment_created",
                "comment": self._comment_bean(issue, comment, v2=True),
                "issue": {
                    "id": issue.id,
                    "key": issue.key,
                    "self": f"{self.url}/rest/api/3/issue/{issue.id}",
                    "fields": {"summary": issue.summary},
                },
            }
        )
        return JSONResponse(self._comment_bean(issue, comment), status_code=201)

    def _issue_event(self, kind: str, issue: Issue, user: JiraUser) -> dict[str, Any]:
        return {
            "timestamp": int(datetime.now(UTC).timestamp() * 1000),
            "webhookEvent": kind,
            "user": user.bean(),
            "issue": self.bean(issue, v2=True),
        }

    # -- search ------------------------------------------------------------------------------------------------
    def _search(self, doc: Any) -> Response:
        problems = self.validator.errors("SearchAndReconcileRequestBean", doc)
        if problems:
            return _error(400, *problems)
        try:
            matches, order = parse_jql(doc["jql"])
        except ValueError as exc:
            return _error(400, f"Error in the JQL Query: {exc}")
        found = [i for i in self.issues.values() if all(m(i) for m in matches)]
        found.sort(key=order[0], reverse=order[1])
        start = int(base64.b64decode(doc["nextPageToken"]).decode()) if doc.get("nextPageToken") else 0
        size = doc.get("maxResults", 50)
        page = found[start : start + size]
        fields = set(doc.get("fields") or ["*all"])
        expand = set((doc.get("expand") or "").split(","))
        result: dict[str, Any] = {
            "issues": [self.bean(i, fields, expand) for i in page],
            "isLast": start + size >= len(found),
        }
        if not result["isLast"]:
            result["nextPageToken"] = base64.b64encode(str(start + size).encode()).decode()
        return JSONResponse(result)

    # -- OAuth 2.0 (3LO) -------------------------------------------------------------------------------------
    def _oauth_token(self, body: bytes) -> Response:
        try:
            doc = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if (doc.get("client_id"), doc.get("client_secret")) != self.oauth_client:
            return JSONResponse({"error": "access_denied", "error_description": "Unauthorized"}, status_code=401)
        if doc.get("grant_type") == "authorization_code":
            account = self.codes.pop(doc.get("code", ""), None)
        elif doc.get("grant_type") == "refresh_token":
            account = self.refresh_tokens.pop(doc.get("refresh_token", ""), None)  # rotating refresh tokens
        else:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if account is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=403)
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        self.access_tokens[access] = account
        self.refresh_tokens[refresh] = account
        return JSONResponse(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 3600,
                "scope": "read:jira-work",
                "token_type": "Bearer",
            }
        )

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    # -- what a person does in Jira (through the REST API, as that person) --------------------------------------
    def auth_of(self, user: JiraUser) -> tuple[str, str]:
        return (user.email, user.token)


def _jql_time(text: str) -> datetime:
    for fmt in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"the date '{text}' is not valid (use yyyy/MM/dd HH:mm)")


def parse_jql(jql: str) -> tuple[list[Any], tuple[Any, bool]]:
    """The JQL subset: `updated >= "..."`, `labels = "x"`, `project = KEY`, `key in (A-1, B-2)`, `key = A-1`,
    joined by AND; `ORDER BY updated|key ASC|DESC`."""
    parts = re.split(r"\s+ORDER\s+BY\s+", jql, maxsplit=1, flags=re.I)
    where, order_by = parts[0], (parts[1] if len(parts) > 1 else "updated ASC")
    matches = []
    for clause in [c for c in re.split(r"\s+AND\s+", where.strip(), flags=re.I) if c]:
        m = re.fullmatch(r'updated\s*>=\s*"([^"]+)"', clause.strip(), flags=re.I)
        if m:
            since = _jql_time(m.group(1))
            matches.append(lambda i, since=since: i.updated >= since)
            continue
        m = re.fullmatch(r'labels\s*=\s*"?([^"\s]+)"?', clause.strip(), flags=re.I)
        if m:
            matches.append(lambda i, label=m.group(1): label in i.labels)
            continue
        m = re.fullmatch(r'project\s*=\s*"?([A-Z0-9]+)"?', clause.strip(), flags=re.I)
        if m:
            matches.append(lambda i, key=m.group(1).upper(): i.project["key"] == key)
            continue
        m = re.fullmatch(r"key\s+in\s*\(([^)]*)\)", clause.strip(), flags=re.I)
        if m:
            keys = {k.strip().strip('"').upper() for k in m.group(1).split(",") if k.strip()}
            matches.append(lambda i, keys=keys: i.key in keys)
            continue
        m = re.fullmatch(r'key\s*=\s*"?([A-Z0-9]+-\d+)"?', clause.strip(), flags=re.I)
        if m:
            matches.append(lambda i, key=m.group(1).upper(): i.key == key)
            continue
        raise ValueError(f"the clause '{clause}' is not supported by this site")
    m = re.fullmatch(r"(updated|key)\s*(ASC|DESC)?", order_by.strip(), flags=re.I)
    if m is None:
        raise ValueError(f"cannot order by '{order_by}'")
    descending = (m.group(2) or "ASC").upper() == "DESC"
    if m.group(1).lower() == "key":
        return matches, ((lambda i: (i.project["key"], int(i.key.split("-")[1]))), descending)
    return matches, ((lambda i: (i.updated, int(i.id))), descending)
