"""An operator's first hour after migrating: `casem import` into a fresh data directory, then `casem up`, which
issues keys for the imported org (its own keys' secrets never travel) and serves its cases with them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.cli.test_up import _start
from tests.support.ports import free_port
from tests.test_import import export, write


def test_up_after_an_import_into_a_fresh_data_dir_issues_keys_for_the_imported_org(tmp_path: Path) -> None:
    document = export()
    org = document["orgs"][0]
    path = write(tmp_path, document)
    env = {**os.environ, "CASEM_DATA_DIR": str(tmp_path)}
    for name in list(env):
        if name.endswith("_DSN") and name.startswith("CASEM_"):
            env.pop(name)  # the embedded defaults under CASEM_DATA_DIR, as `up` uses them
    imported = subprocess.run(
        [sys.executable, "-m", "casem.cli.main", "import", str(path), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr

    port = free_port()
    casem, output = _start(tmp_path, port)
    try:
        assert "imported org Migrated Inc" in output
        api_key = re.search(r"DD-API-KEY\s+([0-9a-f]{32})", output).group(1)
        app_key = re.search(r"DD-APPLICATION-KEY\s+([0-9a-f]{40})", output).group(1)
        headers = {"DD-API-KEY": api_key, "DD-APPLICATION-KEY": app_key}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as http:
            key = org["cases"][0]["key"]
            found = http.get(f"/api/v2/cases/{key}")
            assert found.status_code == 200, found.text
            assert found.json()["data"]["id"] == org["cases"][0]["id"]
            # No second org appeared: the keys are the imported org's.
            assert [p["id"] for p in http.get("/api/v2/cases/projects").json()["data"]] == [org["projects"][0]["id"]]
    finally:
        code, _took = casem.stop(signal.SIGTERM)
        casem.kill()
    assert code == 0, casem.output
    assert (tmp_path / "bootstrap-credentials.json").stat().st_mode & 0o777 == 0o600
