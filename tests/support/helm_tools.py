"""Where the Helm chart suites find helm, kubeconform and the Kubernetes JSON schemas (the `helm_tools` fixture in
tests/topology/conftest.py installs them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HelmTools:
    helm: Path
    kubeconform: Path
    schemas: Path
    kubernetes_version: str = "1.34.4"

    @property
    def schema_location(self) -> str:
        return (
            f"{self.schemas}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}"
            "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
        )
