"""Which operations of datadog-api-client's case management and On-Call APIs casem serves, and which tests call.

usage: .venv/bin/python scripts/api_coverage.py [--markdown]
Reads the client's endpoint table (method + path per operation) and casem's routes; an operation is
"served" when a route matches it, and "tested" when a test file calls it by name through the client.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from datadog_api_client.v2.api.case_management_api import CaseManagementApi
from datadog_api_client.v2.api.case_management_attribute_api import CaseManagementAttributeApi
from datadog_api_client.v2.api.case_management_type_api import CaseManagementTypeApi
from datadog_api_client.v2.api.jira_integration_api import JiraIntegrationApi
from datadog_api_client.v2.api.key_management_api import KeyManagementApi
from datadog_api_client.v2.api.on_call_api import OnCallApi
from datadog_api_client.v2.api.on_call_paging_api import OnCallPagingApi
from datadog_api_client.v2.api.service_now_integration_api import ServiceNowIntegrationApi

from casem.app.context import AppContext
from casem.services.case_api.http.app import create_app

APIS = (
    CaseManagementApi,
    CaseManagementTypeApi,
    CaseManagementAttributeApi,
    KeyManagementApi,
    JiraIntegrationApi,
    ServiceNowIntegrationApi,
    OnCallApi,
    OnCallPagingApi,
)


def operations(api_cls: type) -> list[tuple[str, str, str]]:
    api = api_cls()
    found = []
    for name, endpoint in vars(api).items():
        if name.startswith("_") and hasattr(endpoint, "settings"):
            settings = endpoint.settings
            found.append((settings["operation_id"], settings["http_method"], settings["endpoint_path"]))
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    app = create_app(AppContext())
    # The OpenAPI document lists every API route (whatever app.routes holds).
    routes = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    tests = "\n".join(p.read_text() for p in Path("tests").rglob("*.py"))
    rows = []
    for api_cls in APIS:
        for op, method, path in operations(api_cls):
            pattern = re.sub(r"\{[^}]+\}", "{}", path)
            served = any(m == method and re.sub(r"\{[^}]+\}", "{}", p) == pattern for m, p in routes)
            tested = re.search(rf"\.{op}(_with_pagination)?\(", tests) is not None
            rows.append((api_cls.__name__, op, method, path, served, tested))
    if args.markdown:
        print("| API | operation | method | path | served | tested via client |")
        print("|---|---|---|---|---|---|")
        for api, op, method, path, served, tested in rows:
            print(f"| {api} | {op} | {method} | {path} | {'yes' if served else 'no'} | {'yes' if tested else 'no'} |")
    served = sum(r[4] for r in rows)
    tested = sum(r[5] for r in rows)
    print(f"\n{len(rows)} operations: {served} served, {tested} tested through the client")
    for api, op, _m, _p, s, _t in rows:
        if not s:
            print(f"  not served: {api}.{op}")


if __name__ == "__main__":
    main()
