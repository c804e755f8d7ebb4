"""List casem's projects with Datadog's official Python client, using the keys `casem up` saved.

    .venv/bin/pip install datadog-api-client
    .venv/bin/python examples/list_projects.py

Run it from the directory where `make up` runs (the keys are in var/bootstrap-credentials.json; set
CASEM_DATA_DIR and CASEM_HTTP_PORT if you changed them).
"""

import json
import os
from pathlib import Path

from datadog_api_client import ApiClient, Configuration
from datadog_api_client.v2.api.case_management_api import CaseManagementApi

keys = json.loads((Path(os.environ.get("CASEM_DATA_DIR", "var")) / "bootstrap-credentials.json").read_text())
config = Configuration(host=f"http://127.0.0.1:{os.environ.get('CASEM_HTTP_PORT', '8080')}")
config.api_key["apiKeyAuth"] = keys["api_key"]
config.api_key["appKeyAuth"] = keys["app_key"]
with ApiClient(config) as client:
    projects = CaseManagementApi(client).get_projects().data
    print(f"{len(projects)} project(s)")
    for project in projects:
        print(project.attributes.key, project.attributes.name)
