"""Fixtures for the topology suites: the seed, and the external tools they drive.

The tools are installed by the project's own scripts when missing (never skipped): helm,
kubeconform and the Kubernetes JSON schemas (scripts/tools/install-helm-tools.sh), Graphviz
(scripts/tools/install-graphviz.sh), Chromium (scripts/tools/install-chromium.sh). Each is idempotent and
instant once done.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.helm_tools import HelmTools
from tests.topology import seed

TOOLS = seed.REPO / "scripts" / "tools"


@pytest.fixture(scope="session")
def seed_datacenters() -> dict[str, seed.SeedDatacenter]:
    return seed.datacenters()


def _run_installer(script: str) -> str:
    result = subprocess.run(["bash", str(TOOLS / script)], capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0:
        pytest.fail(f"{script} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


@pytest.fixture(scope="session")
def helm_tools() -> HelmTools:
    # The script prints the schema directory; it also knows where the binaries went.
    schemas = Path(_run_installer("install-helm-tools.sh").strip().splitlines()[-1])
    tools_dir = Path(os.environ.get("CASEM_TOOLS_DIR", Path.home() / ".cache" / "casem" / "tools"))
    tools = HelmTools(tools_dir / "bin" / "helm", tools_dir / "bin" / "kubeconform", schemas)
    for path in (tools.helm, tools.kubeconform):
        assert os.access(path, os.X_OK), f"{path} missing after install-helm-tools.sh"
    assert (schemas / f"v{tools.kubernetes_version}-standalone-strict" / "deployment-apps-v1.json").is_file()
    return tools


@pytest.fixture(scope="session")
def graphviz() -> None:
    _run_installer("install-graphviz.sh")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, which Playwright drives (its own browser downloads are not used)."""
    return Path(_run_installer("install-chromium.sh").strip().splitlines()[-1])
