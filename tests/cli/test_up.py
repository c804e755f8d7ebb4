"""`casem up` as a new user runs it: a subprocess on embedded defaults, driven with the keys it prints."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.v2.api.case_management_api import CaseManagementApi
from datadog_api_client.v2.model.project_create import ProjectCreate
from datadog_api_client.v2.model.project_create_attributes import ProjectCreateAttributes
from datadog_api_client.v2.model.project_create_request import ProjectCreateRequest
from datadog_api_client.v2.model.project_resource_type import ProjectResourceType


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path: Path, http_port: int) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "CASEM_DATA_DIR": str(tmp_path),
        "CASEM_HTTP_PORT": str(http_port),
        "CASEM_CONSOLE_PORT": str(_free_port()),
        "CASEM_GRPC_PORT": str(_free_port()),
        "CASEM_TEMPORAL_PORT": str(_free_port()),
        "CASEM_CONNECTOR_PORT": str(_free_port()),
        "COLUMNS": "200",
    }
    for engine in ("CASEM_TEMPORAL_ADDRESS", "CASEM_KAFKA_BOOTSTRAP", "CASEM_SEARCH_URL", "CASEM_DATACENTER"):
        env.pop(engine, None)  # `up` is the embedded stack
    proc = subprocess.Popen(
        [sys.executable, "-m", "casem.cli.main", "up"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    output = ""
    deadline = time.monotonic() + 60
    while "DD-APPLICATION-KEY" not in output:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"casem up exited early:\n{output}")
        output += line
        assert time.monotonic() < deadline, output
    output += proc.stderr.readline()
    return proc, output


def test_up_serves_the_api_with_the_printed_keys_and_stops_gracefully(tmp_path: Path) -> None:
    port = _free_port()
    proc, output = _start(tmp_path, port)
    try:
        assert f"http://127.0.0.1:{port}" in output
        api_key = re.search(r"DD-API-KEY\s+([0-9a-f]{32})", output).group(1)
        app_key = re.search(r"DD-APPLICATION-KEY\s+([0-9a-f]{40})", output).group(1)
        config = Configuration(host=f"http://127.0.0.1:{port}")
        config.api_key["apiKeyAuth"] = api_key
        config.api_key["appKeyAuth"] = app_key
        with ApiClient(config) as client:
            api = CaseManagementApi(client)
            body = ProjectCreateRequest(
                data=ProjectCreate(
                    attributes=ProjectCreateAttributes(key="UP", name="Up"), type=ProjectResourceType.PROJECT
                )
            )
            assert api.create_project(body=body).data.attributes.key == "UP"
            assert [p.attributes.key for p in api.get_projects().data] == ["UP"]
        # The caseworker runs too: an upload goes through its file lifecycle workflow to "available".
        headers = {"DD-API-KEY": api_key, "DD-APPLICATION-KEY": app_key}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            project_id = http.get("/api/v2/cases/projects").json()["data"][0]["id"]
            case = http.post(
                "/api/v2/cases",
                json={
                    "data": {
                        "type": "case",
                        "attributes": {"title": "with a file", "type_id": "00000000-0000-0000-0000-000000000001"},
                        "relationships": {"project": {"data": {"id": project_id, "type": "project"}}},
                    }
                },
            ).json()["data"]
            upload = http.post(
                f"/api/v2/cases/{case['id']}/attachments", files={"file": ("notes.txt", b"hello from up", "text/plain")}
            )
            assert upload.status_code == 201, upload.text
            url = f"/api/v2/cases/{case['id']}/attachments/{upload.json()['data']['id']}"
            deadline = time.monotonic() + 60
            while http.get(url).json()["data"]["attributes"]["state"] != "available":
                assert time.monotonic() < deadline, http.get(url).text
                time.sleep(0.3)
            assert http.get(url + "/content").content == b"hello from up"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0

    # The printed console URL and first admin's password sign in to the web console.
    console_url = re.search(r"Console\s+(http://127\.0\.0\.1:\d+)", output).group(1)
    password = re.search(r"admin@casem\.local.*? with password (\S+)", output).group(1)
    assert console_url and password

    # A second run reuses the data and shows the same keys.
    proc, output2 = _start(tmp_path, port)
    try:
        console_url = re.search(r"Console\s+(http://127\.0\.0\.1:\d+)", output2).group(1)
        with httpx.Client(base_url=console_url, timeout=30, follow_redirects=True) as browser:
            form = browser.get("/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            signed_in = browser.post(
                "/sign-in", data={"csrf_token": token, "email": "admin@casem.local", "password": password}
            )
            assert signed_in.status_code == 200 and "<title>Cases · casem</title>" in signed_in.text, signed_in.text
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert api_key in output2 and app_key in output2
    assert (tmp_path / "case-management.db").exists()
