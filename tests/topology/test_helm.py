"""The Helm chart: lint, render for all eight datacenters, validate with kubeconform -strict.

helm, kubeconform and the JSON schemas come from scripts/tools/install-helm-tools.sh (the
`helm_tools` fixture runs it; it is instant once installed).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from casem.cli.main import app
from casem.infra.helm_values import CHART_DIR, helm_values
from casem.topology import config
from casem.topology.datacenters import catalog
from casem.topology.services import NOT_BUILT_YET, SERVICES
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL, TENANTS_BY_NAME
from casem.topology.topics import DOMAIN_EVENTS_ONCALL
from tests.support.helm_tools import HelmTools

DATACENTERS = list(catalog().names)
ALL_WORKLOADS = {(f"{s.name}-{f}" if f else s.name): (s, f) for s in SERVICES for f in (s.flavors or (None,))}
# The chart deploys what this build runs; the others would crash-loop.
WORKLOADS = {name: (s, f) for name, (s, f) in ALL_WORKLOADS.items() if (s.name, f) not in NOT_BUILT_YET}


@pytest.fixture(scope="module")
def values_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("helm-values")
    result = CliRunner().invoke(app, ["infra", "helm-values", "--all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in out.glob("*.yaml")) == sorted(DATACENTERS)
    return out


def _run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)


def _template(tools: HelmTools, values: Path) -> str:
    result = _run(
        [
            str(tools.helm),
            "template",
            "casem",
            str(CHART_DIR),
            "--kube-version",
            tools.kubernetes_version,
            "-f",
            str(values),
        ]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def rendered(helm_tools: HelmTools, values_dir: Path) -> dict[str, str]:
    return {dc: _template(helm_tools, values_dir / f"{dc}.yaml") for dc in DATACENTERS}


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _kubeconform(tools: HelmTools, manifests: Path) -> subprocess.CompletedProcess[str]:
    return _run(
        [
            str(tools.kubeconform),
            "-strict",
            "-summary",
            "-kubernetes-version",
            tools.kubernetes_version,
            "-schema-location",
            tools.schema_location,
            str(manifests),
        ]
    )


@pytest.mark.parametrize("dc", DATACENTERS)
def test_helm_lint(helm_tools: HelmTools, values_dir: Path, dc: str) -> None:
    result = _run([str(helm_tools.helm), "lint", "--strict", str(CHART_DIR), "-f", str(values_dir / f"{dc}.yaml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_kubeconform_strict_accepts_every_datacenter(
    helm_tools: HelmTools, rendered: dict[str, str], tmp_path: Path
) -> None:
    for dc, text in rendered.items():
        path = tmp_path / f"{dc}.yaml"
        path.write_text(text)
        result = _kubeconform(helm_tools, path)
        assert result.returncode == 0, f"{dc}:\n{result.stdout}{result.stderr}"
        count = len(_docs(text))
        assert f"{count} resources found in 1 file - Valid: {count}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout


def test_kubeconform_really_validates_against_the_schemas(
    helm_tools: HelmTools, rendered: dict[str, str], tmp_path: Path
) -> None:
    # An unknown field and a wrongly typed one must fail: the offline schemas are in use and strict.
    docs = _docs(rendered["us3.prod.dog"])
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["replicaz"] = 3
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "ninety"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(deployment))
    result = _kubeconform(helm_tools, path)
    assert result.returncode != 0
    assert "replicaz" in result.stdout and "containerPort" in result.stdout


@pytest.mark.parametrize("dc", DATACENTERS)
def test_one_deployment_per_service_and_flavor(rendered: dict[str, str], dc: str) -> None:
    docs = _docs(rendered[dc])
    kinds: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    deployments = {d["metadata"]["name"]: d for d in kinds["Deployment"]}
    flavorless = sum(1 for s in SERVICES if not s.flavors)
    flavors = sum(len(s.flavors) for s in SERVICES)
    # The seed's 25 workloads, casem's web console (case-console) and case-connector-ingress.
    assert flavorless + flavors == len(ALL_WORKLOADS) == 27
    assert set(deployments) == set(WORKLOADS)
    assert len(deployments) == 27 - len(NOT_BUILT_YET)
    for name, (svc, flavor) in ALL_WORKLOADS.items():
        assert (name in deployments) == ((svc.name, flavor) not in NOT_BUILT_YET), name
    for kind in ("Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert sorted(d["metadata"]["name"] for d in kinds[kind]) == sorted(WORKLOADS), kind
    assert len(kinds["ServiceAccount"]) == len(kinds["ConfigMap"]) == 1

    for name, deployment in deployments.items():
        svc, flavor = WORKLOADS[name]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == ["casem"]
        assert container["args"] == ["run", svc.name] + (["--flavor", flavor] if flavor else []) + ["--all-interfaces"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        # case-api has no ops port: it serves /metrics (and /healthz) on its HTTP port, where Prometheus scrapes it.
        expected = (
            ({"metrics": 9090} if svc.ops else {})
            | ({"grpc": 50051} if svc.grpc else {})
            | ({"http": 8080} if svc.http else {})
        )
        assert ports == expected, name
        if svc.grpc:
            assert container["readinessProbe"]["grpc"] == {"port": 50051}
        else:
            assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        health = {"path": "/healthz", "port": "metrics" if svc.ops else "http"}
        assert container["startupProbe"]["httpGet"] == container["livenessProbe"]["httpGet"] == health, name
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CASEM_DATACENTER"] == dc
        assert env["CASEM_CONFIG"] == "/etc/casem/casem.yaml"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        secret_volumes = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
        assert secret_volumes == ["casem-postgres"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(ports["metrics" if svc.ops else "http"]), name
        assert annotations["prometheus.io/path"] == "/metrics"
        assert pod["serviceAccountName"] == kinds["ServiceAccount"][0]["metadata"]["name"]
    assert "case-api" in deployments and {"http", "grpc"} == {
        p["name"] for p in next(d for d in kinds["Service"] if d["metadata"]["name"] == "case-api")["spec"]["ports"]
    }


def test_us1_fed_renders_no_on_call_workload(rendered: dict[str, str]) -> None:
    fed = rendered["us1.fed.dog"]
    oncall = TENANTS_BY_NAME[ON_CALL]
    for needle in (ON_CALL, DOMAIN_EVENTS_ONCALL.name, oncall.search_cluster, "oncall"):
        assert needle not in fed, needle
    # ...while every other datacenter wires the on-call tenant into each handler flavor.
    for dc, text in rendered.items():
        if dc == "us1.fed.dog":
            continue
        handlers = [
            d
            for d in _docs(text)
            if d["kind"] == "Deployment" and d["metadata"]["labels"].get("casem.dev/service") == "case-event-handler"
        ]
        built_flavors = [f for s, f in WORKLOADS.values() if s.name == "case-event-handler"]
        assert (
            len(handlers) == len(built_flavors) == 17 - len({f for s, f in NOT_BUILT_YET if s == "case-event-handler"})
        )
        for d in handlers:
            assert DOMAIN_EVENTS_ONCALL.name in d["spec"]["template"]["metadata"]["annotations"]["casem.dev/consumes"]


def test_ap2_carries_its_broker_url_and_only_ap2(rendered: dict[str, str]) -> None:
    url = catalog().get("ap2.prod.dog").kafka.broker_url
    assert url
    for dc, text in rendered.items():
        configmap = next(d for d in _docs(text) if d["kind"] == "ConfigMap")
        casem_yaml = yaml.safe_load(configmap["data"]["casem.yaml"])
        deployments = [d for d in _docs(text) if d["kind"] == "Deployment"]
        bootstraps = {
            next(
                (
                    e["value"]
                    for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
                    if e["name"] == "CASEM_KAFKA_BOOTSTRAP"
                ),
                None,
            )
            for d in deployments
        }
        if dc == "ap2.prod.dog":
            assert configmap["data"]["kafka-bootstrap"] == url
            assert casem_yaml["kafka"]["bootstrap"] == url
            assert bootstraps == {url}
        else:
            assert "kafka-bootstrap" not in configmap["data"] and "kafka" not in casem_yaml
            assert bootstraps == {None}
            assert ":9092" not in text


def test_dynamic_instrumentation_switch_only_where_the_catalog_enables_it(rendered: dict[str, str]) -> None:
    for dc, text in rendered.items():
        deployments = [d for d in _docs(text) if d["kind"] == "Deployment"]
        flags = {
            any(
                e["name"] == "DD_DYNAMIC_INSTRUMENTATION_ENABLED" and e["value"] == "true"
                for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
            )
            for d in deployments
        }
        assert flags == {catalog().get(dc).features.dynamic_instrumentation}, dc


@pytest.mark.parametrize("dc", DATACENTERS)
def test_mounted_config_resolves_to_the_catalog(rendered: dict[str, str], dc: str, tmp_path: Path) -> None:
    # What the pods read (ConfigMap casem.yaml + CASEM_DATACENTER) gives the same endpoints as the catalog.
    configmap = next(d for d in _docs(rendered[dc]) if d["kind"] == "ConfigMap")
    path = tmp_path / "casem.yaml"
    path.write_text(configmap["data"]["casem.yaml"])
    pod_env = {"CASEM_DATACENTER": dc, "CASEM_CONFIG": str(path), "CASEM_SECRETS_DIR": str(tmp_path)}
    from_pod = config.resolve(env=pod_env)
    catalog_dc = catalog().get(dc)
    assert list(from_pod.tenants) == list(catalog_dc.tenants)
    for tenant, t in from_pod.tenants.items():
        assert t.database.master_dsn.startswith(f"postgresql://{catalog_dc.postgres[tenant].master}/")
        assert t.database.replica_dsn.startswith(f"postgresql://{catalog_dc.postgres[tenant].replica}/")
    assert from_pod.messaging.bootstrap == catalog_dc.kafka.broker_url
    assert configmap["data"]["tenants"] == ",".join(catalog_dc.tenants)


def test_values_differ_only_by_datacenter() -> None:
    a, b = helm_values("us3.prod.dog"), helm_values("ap1.prod.dog")
    assert a.keys() == b.keys()
    assert [w["name"] for w in a["workloads"]] == [w["name"] for w in b["workloads"]]
    assert a["datacenter"]["name"] == "us3.prod.dog" and b["datacenter"]["name"] == "ap1.prod.dog"
    assert [t["name"] for t in helm_values("us1.fed.dog")["tenants"]] == [CASE_MANAGEMENT]


def test_chart_refuses_to_render_without_datacenter_values(helm_tools: HelmTools) -> None:
    result = _run([str(helm_tools.helm), "template", "casem", str(CHART_DIR), "--kube-version", "1.34.4"])
    assert result.returncode != 0
    assert "casem infra helm-values" in result.stderr


def test_helm_values_cli_single_datacenter_and_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["infra", "helm-values", "--datacenter", "ap2.prod.dog"])
    assert result.exit_code == 0
    values = yaml.safe_load(result.stdout)
    assert values == helm_values("ap2.prod.dog")
    assert runner.invoke(app, ["infra", "helm-values"]).exit_code == 2
    assert runner.invoke(app, ["infra", "helm-values", "--all"]).exit_code == 2
    bad = runner.invoke(app, ["infra", "helm-values", "--datacenter", "mars.prod.dog"])
    assert bad.exit_code == 2 and "unknown datacenter" in bad.output


def _env_of(deployment: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_temporal_is_set_where_known_and_named_missing_where_not(
    helm_tools: HelmTools, rendered: dict[str, str], values_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No catalog datacenter names its Temporal (the seed gives none): the chart leaves the address out ...
    for dc, text in rendered.items():
        for d in (d for d in _docs(text) if d["kind"] == "Deployment"):
            env = _env_of(d)
            assert "CASEM_TEMPORAL_ADDRESS" not in env, dc
            assert (env["CASEM_TEMPORAL_NAMESPACE"], env["CASEM_TEMPORAL_TASK_QUEUE"]) == ("default", "caseworker")
    # ... and an install that sets it gives it to every workload and to the mounted configuration.
    address = "temporal-frontend.us1.prod.dog:7233"
    result = _run(
        [
            str(helm_tools.helm),
            "template",
            "casem",
            str(CHART_DIR),
            "--kube-version",
            helm_tools.kubernetes_version,
            "-f",
            str(values_dir / "us1.prod.dog.yaml"),
            "--set",
            f"temporal.address={address}",
        ]
    )
    assert result.returncode == 0, result.stderr
    docs = _docs(result.stdout)
    assert {_env_of(d).get("CASEM_TEMPORAL_ADDRESS") for d in docs if d["kind"] == "Deployment"} == {address}
    assert next(d for d in docs if d["kind"] == "ConfigMap")["data"]["temporal-address"] == address


def test_a_catalog_temporal_reaches_the_values_and_the_pods_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casem.infra import helm_values as helm_module
    from casem.topology import datacenters

    raw = yaml.safe_load(datacenters.CATALOG_PATH.read_text())
    raw["datacenters"][1]["temporal"] = {"address": "temporal.us1.prod.dog:7233", "namespace": "casem"}
    variant = tmp_path / "catalog.yaml"
    variant.write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(helm_module, "catalog", lambda: datacenters.load_catalog(variant))
    monkeypatch.setattr(config, "catalog", lambda: datacenters.load_catalog(variant))
    values = helm_module.helm_values("us1.prod.dog")
    assert values["temporal"] == {
        "address": "temporal.us1.prod.dog:7233",
        "namespace": "casem",
        "taskQueue": "caseworker",
    }
    path = tmp_path / "casem.yaml"
    path.write_text(yaml.safe_dump(values["config"]))
    pod = config.temporal_settings({"CASEM_CONFIG": str(path), "CASEM_SECRETS_DIR": str(tmp_path)})
    assert (pod.address, pod.namespace, pod.source) == ("temporal.us1.prod.dog:7233", "casem", "file")


def test_notification_providers_reach_every_workload_with_their_secrets_from_the_secret(
    helm_tools: HelmTools, values_dir: Path, tmp_path: Path
) -> None:
    # Unset by default: no provider variables at all (deliveries then fail with "no SMTP server configured").
    plain = _docs(_template(helm_tools, values_dir / "us1.prod.dog.yaml"))
    assert not any("CASEM_SMTP_HOST" in _env_of(d) for d in plain if d["kind"] == "Deployment")
    settings = [
        "notifications.smtp.host=smtp.example.com",
        "notifications.smtp.username=casem",
        "notifications.twilio.accountSid=AC0123",
        "notifications.twilio.from=+15550100",
    ]
    args = [str(helm_tools.helm), "template", "casem", str(CHART_DIR), "--kube-version", helm_tools.kubernetes_version]
    args += ["-f", str(values_dir / "us1.prod.dog.yaml")]
    for setting in settings:
        args += ["--set", setting]
    result = _run(args)
    assert result.returncode == 0, result.stderr
    deployments = [d for d in _docs(result.stdout) if d["kind"] == "Deployment"]
    for deployment in deployments:
        env = _env_of(deployment)
        assert env["CASEM_SMTP_HOST"] == "smtp.example.com" and env["CASEM_SMTP_PORT"] == "587"
        assert env["CASEM_SMTP_STARTTLS"] == "true" and env["CASEM_TWILIO_ACCOUNT_SID"] == "AC0123"
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
        }
        assert refs["CASEM_SMTP_PASSWORD"]["key"] == "smtp-password" and refs["CASEM_SMTP_PASSWORD"]["optional"] is True
        assert refs["CASEM_TWILIO_AUTH_TOKEN"]["key"] == "twilio-auth-token"
    # Still valid Kubernetes with the providers set.
    path = tmp_path / "with-providers.yaml"
    path.write_text(result.stdout)
    checked = _kubeconform(helm_tools, path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# The services that wait in place at start-up for an engine (casem/services/common/waiting.py): alive, not ready.
WAITING_SERVICES = {
    "case-event-relay",
    "case-event-handler",
    "case-third-party-reader",
    "case-intake",
    "case-connector-ingress",
    "case-console",
    "case-indexer",
}


def _services_calling(function: str) -> set[str]:
    services = CHART_DIR.parents[2] / "casem" / "services"
    return {
        path.relative_to(services).parts[0].replace("_", "-")
        for path in services.rglob("*.py")
        if f"{function}(" in path.read_text() and path.relative_to(services).parts[0] != "common"
    }


def test_the_waiting_services_are_the_ones_that_call_the_wait() -> None:
    # A service that starts waiting for its topics joins the list, and so the probe check below.
    assert _services_calling("ensure_topics_waiting") == WAITING_SERVICES


def test_every_ops_flag_matches_the_ports_casem_run_listens_on() -> None:
    # The chart probes /healthz on the ops port of a workload flagged `ops`: `casem run` must serve one there.
    from casem.cli.runtime import RUNNABLE, RunOptions

    for svc in SERVICES:
        options = RunOptions(svc.name, None, "127.0.0.1", 8080, 50051, 9090)
        flags = {p.flag: p.port for p in RUNNABLE[svc.name].ports(options)}
        assert ("--ops-port" in flags) == svc.ops, svc.name
        if svc.ops:
            assert flags["--ops-port"] == 9090, svc.name  # the chart's `metrics` port


@pytest.mark.parametrize("dc", DATACENTERS)
def test_a_waiting_service_is_kept_alive_on_health_and_kept_out_of_traffic_on_readiness(
    rendered: dict[str, str], dc: str
) -> None:
    # While it waits for Kafka a service is alive (its ops endpoint's /healthz answers; case-intake's gRPC server is
    # not up yet) and not ready: liveness (and the start-up probe before it) must target health, never readiness.
    checked = set()
    for deployment in (d for d in _docs(rendered[dc]) if d["kind"] == "Deployment"):
        service = deployment["metadata"]["labels"]["casem.dev/service"]
        if service not in WAITING_SERVICES:
            continue
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("startupProbe", "livenessProbe"):
            target = container[probe]
            assert set(target) >= {"httpGet", "periodSeconds", "failureThreshold"}, (deployment["metadata"], probe)
            assert "grpc" not in target and target["httpGet"] == {"path": "/healthz", "port": "metrics"}
            assert ports["metrics"] == 9090
        readiness = container["readinessProbe"]
        assert readiness.get("httpGet", {}).get("path") != "/healthz"
        assert ("grpc" in readiness) or readiness["httpGet"]["path"] == "/readyz"
        # The start-up probe gives a slow start minutes, not the liveness probe's half-minute.
        startup = container["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
        checked.add(service)
    assert checked == WAITING_SERVICES
