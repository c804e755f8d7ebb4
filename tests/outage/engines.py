"""Private engines for the outage test: PostgreSQL, Kafka, OpenSearch and Temporal started by the same
scripts/services/*.sh as everyone's, on free ports and data directories of their own, so stopping them
hurts nobody else on the machine (nor the other suites of a CI run)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from casem.topology.tenants import TENANTS, to_async_dsn
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "services"
ENGINES = ("postgres", "kafka", "opensearch", "temporal")


@dataclass
class PrivateEngines:
    # Under /var/tmp: the postgres user must reach its data directory (pytest's tmp dirs are root-only).
    root: Path = field(default_factory=lambda: Path(f"/var/tmp/casem-outage-{uuid.uuid4().hex[:8]}"))
    pg_port: int = field(default_factory=free_port)
    kafka_port: int = field(default_factory=lambda: free_port(pair=True))
    opensearch_port: int = field(default_factory=free_port)
    opensearch_transport_port: int = field(default_factory=free_port)
    temporal_port: int = field(default_factory=free_port)
    timings: dict[str, float] = field(default_factory=dict)

    def script_env(self) -> dict[str, str]:
        return {
            "CASEM_PG_PORT": str(self.pg_port),
            "CASEM_PG_DATA": str(self.root / "pg"),
            "CASEM_KAFKA_PORT": str(self.kafka_port),
            "CASEM_KAFKA_DATA": str(self.root / "kafka"),
            "CASEM_OPENSEARCH_PORT": str(self.opensearch_port),
            "CASEM_OPENSEARCH_TRANSPORT_PORT": str(self.opensearch_transport_port),
            "CASEM_OPENSEARCH_DATA": str(self.root / "opensearch"),
            "CASEM_TEMPORAL_PORT": str(self.temporal_port),
            "CASEM_TEMPORAL_STATE": str(self.root / "temporal"),
        }

    def run(self, engine: str, action: str, base_env: dict[str, str]) -> float:
        """`scripts/services/<engine>.sh <action>` against this instance; returns the seconds it took."""
        started = time.monotonic()
        result = subprocess.run(
            ["bash", str(SCRIPTS / f"{engine}.sh"), action],
            env={**base_env, **self.script_env()},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{engine}.sh {action} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        took = time.monotonic() - started
        self.timings[f"{engine} {action}"] = took
        return took

    def start_all(self, base_env: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(len(ENGINES)) as pool:
            for future in [pool.submit(self.run, engine, "start", base_env) for engine in ENGINES]:
                future.result()

    def stop_all(self, base_env: dict[str, str]) -> None:
        with ThreadPoolExecutor(len(ENGINES)) as pool:
            futures = [pool.submit(self.run, engine, "stop", base_env) for engine in ENGINES]
        errors = [f.exception() for f in futures if f.exception() is not None]
        shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise RuntimeError(f"stopping the private engines: {errors}")

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    def create_tenant_databases(self) -> dict[str, str]:
        """One database per tenant; their async DSNs by tenant name."""
        dsns = {}
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for t in TENANTS:
                name = "casem_" + t.name.replace("-", "_")
                conn.execute(f'CREATE DATABASE "{name}"')
                dsns[t.name] = make_url(to_async_dsn(self.admin_dsn)).set(database=name).render_as_string(False)
        return dsns

    def service_env(self) -> dict[str, str]:
        """Where casem's services find these engines."""
        return {
            "CASEM_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.kafka_port}",
            "CASEM_SEARCH_URL": f"http://127.0.0.1:{self.opensearch_port}",
            "CASEM_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
        }
