"""Reading an org from a Datadog-compatible API (Datadog itself, or another casem) with the official
`datadog-api-client`, for the live migration (`casem import --from-datadog`).

The client's operations build every request (paths, parameters, authentication, the site's host); its REST
layer is swapped for one that sends through casem's guarded HTTP client (casem/adapters/http), so the
operator-named site gets the same destination checks as every other outbound call (an internal host needs
CASEM_OUTBOUND_ALLOW). Answers are read as the JSON:API documents on the wire (`preload_content=False`):
the typed models would drop what they do not know (change cells of a timeline, casem's extra members).

Blocking, like the official client: call it from worker threads (the migration does).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v2.api.case_management_api import CaseManagementApi
from datadog_api_client.v2.api.case_management_attribute_api import CaseManagementAttributeApi
from datadog_api_client.v2.api.case_management_type_api import CaseManagementTypeApi
from datadog_api_client.v2.api.teams_api import TeamsApi
from datadog_api_client.v2.api.users_api import UsersApi
from datadog_api_client.v2.model.case_sortable_field import CaseSortableField

from casem.adapters.http import AllowList, allow_list_from_env, guarded_sync_client

PAGE_SIZE = 100  # the most a page of cases, users or teams holds on Datadog
RETRIES = 5  # 429 and 5xx answers, with back-off (Retry-After when given)


class SourceError(Exception):
    """The source refused or failed a request for good (the message says which and why)."""


class _Response:
    """What the official client reads of an answer (status, reason, data, headers)."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.reason = response.reason_phrase
        self.data = response.content
        self.headers = response.headers

    def getheaders(self) -> Any:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class _GuardedRest:
    """The official client's REST layer (`rest_client.request`) over the guarded httpx client."""

    def __init__(self, http: httpx.Client, sleep: Callable[[float], None] = time.sleep) -> None:
        self.http = http
        self.sleep = sleep
        self.pool_manager = self  # ApiClient.close() clears it

    def clear(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        url: str,
        query_params: Any = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        preload_content: bool = True,
        request_timeout: Any = None,
    ) -> _Response:
        content = json.dumps(body).encode() if body is not None else None
        for attempt in range(RETRIES + 1):
            response = self.http.request(method, url, params=query_params or None, headers=headers, content=content)
            transient = response.status_code == 429 or response.status_code >= 500
            if not transient or attempt == RETRIES:
                break
            retry_after = response.headers.get("Retry-After", "")
            self.sleep(float(retry_after) if retry_after.isdigit() else min(0.5 * 2**attempt, 30.0))
        answer = _Response(response)
        if not 200 <= answer.status <= 299:
            raise ApiException(http_resp=answer)
        return answer


def configuration(site: str, api_key: str, app_key: str) -> Configuration:
    """A client configuration for `site`: a Datadog site name (datadoghq.eu) or a base URL (http://host:8080)."""
    config = Configuration(host=site.rstrip("/")) if "://" in site else Configuration()
    if "://" not in site:
        config.server_variables["site"] = site
    config.api_key["apiKeyAuth"] = api_key
    config.api_key["appKeyAuth"] = app_key
    config.preload_content = False  # the wire documents, not the typed models
    config.enable_retry = False  # retries happen in the guarded layer above
    return config


class DatadogSource:
    """An org as a Datadog-compatible API serves it, read page by page. Every method answers JSON:API
    resource objects (dicts); a refused or failed request raises SourceError."""

    def __init__(
        self, site: str, api_key: str, app_key: str, *, allow: AllowList | None = None, timeout: float = 30.0
    ) -> None:
        self.site = site
        self.client = ApiClient(configuration(site, api_key, app_key))
        self.client.rest_client = _GuardedRest(
            guarded_sync_client(allow if allow is not None else allow_list_from_env(), timeout=timeout)
        )
        self.cases_api = CaseManagementApi(self.client)
        self.types_api = CaseManagementTypeApi(self.client)
        self.attributes_api = CaseManagementAttributeApi(self.client)
        self.users_api = UsersApi(self.client)
        self.teams_api = TeamsApi(self.client)

    def close(self) -> None:
        self.client.close()

    def _read(self, what: str, call: Callable[[], Any]) -> dict[str, Any]:
        try:
            response = call()
        except ApiException as exc:
            raise SourceError(f"{self.site}: reading {what} failed: HTTP {exc.status} {exc.reason}") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.site}: reading {what} failed: {exc}") from None
        return json.loads(response.data or b"{}")

    def _data(self, what: str, call: Callable[[], Any]) -> list[dict[str, Any]]:
        return list(self._read(what, call).get("data") or [])

    # -- identities and configuration ------------------------------------------------------------------------
    def users(self) -> Iterator[dict[str, Any]]:
        page = 0
        while True:
            found = self._data("users", partial(self.users_api.list_users, page_size=PAGE_SIZE, page_number=page))
            yield from found
            if len(found) < PAGE_SIZE:
                return
            page += 1

    def teams(self) -> Iterator[dict[str, Any]]:
        page = 0
        while True:
            found = self._data("teams", partial(self.teams_api.list_teams, page_size=PAGE_SIZE, page_number=page))
            yield from found
            if len(found) < PAGE_SIZE:
                return
            page += 1

    def projects(self) -> list[dict[str, Any]]:
        return self._data("projects", self.cases_api.get_projects)

    def case_types(self) -> list[dict[str, Any]]:
        return self._data("case types", self.types_api.get_all_case_types)

    def custom_attributes(self) -> list[dict[str, Any]]:
        return self._data("custom attributes", self.attributes_api.get_all_custom_attributes)

    def views(self, project_id: str) -> list[dict[str, Any]]:
        return self._data("views", lambda: self.cases_api.list_case_views(project_id=project_id))

    def automation_rules(self, project_id: str) -> list[dict[str, Any]]:
        return self._data("automation rules", lambda: self.cases_api.list_case_automation_rules(project_id=project_id))

    def notification_rules(self, project_id: str) -> list[dict[str, Any]]:
        return self._data(
            "notification rules", lambda: self.cases_api.get_project_notification_rules(project_id=project_id)
        )

    # -- cases -------------------------------------------------------------------------------------------------
    def cases(self, page: int, size: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], int | None]:
        """Page `page` (from 1) of the org's cases, oldest first, and how many there are in all when told."""
        document = self._read(
            f"cases page {page}",
            lambda: self.cases_api.search_cases(
                page_size=size, page_number=page, sort_field=CaseSortableField.CREATED_AT, sort_asc=True
            ),
        )
        total = ((document.get("meta") or {}).get("page") or {}).get("total")
        return list(document.get("data") or []), int(total) if isinstance(total, int) else None

    def timeline(self, case_id: str) -> list[dict[str, Any]]:
        cells: list[dict[str, Any]] = []
        page = 0
        while True:
            found = self._data(
                f"the timeline of case {case_id}",
                partial(
                    self.cases_api.list_case_timeline,
                    case_id=case_id,
                    page_size=PAGE_SIZE,
                    page_number=page,
                    sort_ascending=True,
                ),
            )
            cells.extend(found)
            if len(found) < PAGE_SIZE:
                return cells
            page += 1

    def watchers(self, case_id: str) -> list[dict[str, Any]]:
        return self._data(f"the watchers of case {case_id}", lambda: self.cases_api.list_case_watchers(case_id=case_id))

    def links(self, case_id: str) -> list[dict[str, Any]]:
        return self._data(
            f"the links of case {case_id}",
            lambda: self.cases_api.list_case_links(entity_type="CASE", entity_id=case_id),
        )
