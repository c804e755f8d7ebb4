"""`casem up` as a new user runs it: a subprocess on embedded defaults, driven with the keys it prints."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.v2.api.case_management_api import CaseManagementApi
from datadog_api_client.v2.model.project_create import ProjectCreate
from datadog_api_client.v2.model.project_create_attributes import ProjectCreateAttributes
from datadog_api_client.v2.model.project_create_request import ProjectCreateRequest
from datadog_api_client.v2.model.project_resource_type import ProjectResourceType

from tests.cli.processes import Casem, casem_env, keys
from tests.support.ports import free_port


def _start(tmp_path: Path, http_port: int) -> tuple[Casem, str]:
    ports = {"http": http_port, "grpc": free_port(), "intake": free_port(), "temporal": free_port()}
    ports |= {"console": free_port(), "connector": free_port(), "chat_grpc": free_port(), "chat": free_port()}
    casem = Casem.start(["up"], casem_env(tmp_path, **ports))
    return casem, casem.up()


def _submit_intake(intake: str, api_key: str, app_key: str, project_id: str) -> str:
    from casem.proto_gen.casem.v1 import intake_pb2, intake_service_pb2_grpc, types_pb2

    with grpc.insecure_channel(intake) as channel:
        stub = intake_service_pb2_grpc.CaseIntakeServiceStub(channel)
        request = intake_pb2.CaseIntake(
            schema_version=1,
            intake_key="first-intake",
            project_id=project_id,
            title="disk full on web-1",
            priority=types_pb2.CASE_PRIORITY_P2,
        )
        metadata = (("dd-api-key", api_key), ("dd-application-key", app_key))
        return stub.Submit(request, metadata=metadata, timeout=30).intake_key


def test_up_serves_the_api_with_the_printed_keys_and_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    casem, output = _start(tmp_path, port)
    try:
        assert f"http://127.0.0.1:{port}" in output
        # Every built service runs, each in the banner with its address.
        banner = output[output.index("casem is up") :]
        for service in (
            "case-api",
            "case-intake",
            "case-indexer",
            "case-event-relay",
            "case-event-handler",
            "case-third-party-reader",
            "case-connector-ingress",
            "case-chat-interactions",
            "case-console",
        ):
            assert f"│ {service}" in banner, banner
        intake = re.search(r"case-intake\s+gRPC (127\.0\.0\.1:\d+)", banner).group(1)
        assert re.search(r"caseworker\s+Temporal 127\.0\.0\.1:\d+", banner), banner
        api_key, app_key = keys(output)
        # The printed example works as printed.
        curl = next(line.strip() for line in output.splitlines() if line.strip().startswith("curl "))
        printed = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=30, check=True)
        assert json.loads(printed.stdout) == {"data": []}
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
        # So does the example the README and the banner show for the official client.
        example = Path(__file__).parents[2] / "examples" / "list_projects.py"
        env = {**os.environ, "CASEM_DATA_DIR": str(tmp_path), "CASEM_HTTP_PORT": str(port)}
        listed = subprocess.run([sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines() == ["1 project(s)", "UP Up"]
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

            # The seed's primary path: gRPC intake -> case-intake topic -> case-indexer -> case-api.
            assert _submit_intake(intake, api_key, app_key, project_id) == "first-intake"
            deadline = time.monotonic() + 60
            while "disk full on web-1" not in [
                c["attributes"]["title"] for c in http.get("/api/v2/cases").json()["data"]
            ]:
                assert time.monotonic() < deadline, "the intake never became a case"
                time.sleep(0.3)
    finally:
        code, _ = casem.stop(signal.SIGTERM)
        casem.kill()
    assert code == 0, casem.output
    assert casem.output.rstrip().splitlines()[-1].startswith("casem stopped (SIGTERM")

    # The printed console URL and the first admin's password sign in to the web console.
    password = re.search(r"admin@casem\.local with password (\S+)", output).group(1)

    # A second run reuses the data and shows the same keys and the same console password.
    casem, output2 = _start(tmp_path, port)
    try:
        assert api_key in output2 and app_key in output2 and password in output2
        console_url = re.search(r"case-console\s+│?\s*(http://127\.0\.0\.1:\d+)", output2).group(1)
        with httpx.Client(base_url=console_url, timeout=30, follow_redirects=True) as browser:
            form = browser.get("/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            signed_in = browser.post(
                "/sign-in", data={"csrf_token": token, "email": "admin@casem.local", "password": password}
            )
            assert signed_in.status_code == 200 and "<title>Cases · casem</title>" in signed_in.text, signed_in.text
    finally:
        code, _ = casem.stop(signal.SIGTERM)
        casem.kill()
    assert code == 0
    assert (tmp_path / "case-management.db").exists()
