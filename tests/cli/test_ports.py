"""Ports never collide silently: a second `casem up`, or `casem run case-intake` beside one, fails with one
clear line naming the port and the option to change it, exits non-zero and starts nothing; the first keeps
answering alone. A stop signal always ends the process, with a last line saying so."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casem.proto_gen.casem.v1 import case_api_pb2, case_api_pb2_grpc
from casem.services.common.grpc_server import server_options
from casem.services.common.listen import PortInUse, add_grpc_port
from tests.cli.processes import Casem, casem_env, error_lines, keys
from tests.support.ports import free_port

LIGHT = "case-api,case-event-relay,case-intake"  # no caseworker: no Temporal dev server to wait for


@pytest.fixture
def first(tmp_path: Path) -> Iterator[tuple[Casem, dict[str, int]]]:
    ports = {"http": free_port(), "grpc": free_port(), "intake": free_port()}
    casem = Casem.start(["up", "--services", LIGHT], casem_env(tmp_path / "first", **ports))
    try:
        casem.up()
        yield casem, ports
    finally:
        casem.kill()


def _list_projects(grpc_port: int, api_key: str, app_key: str, calls: int) -> list[str]:
    metadata = (("dd-api-key", api_key), ("dd-application-key", app_key))
    outcomes = []
    for _ in range(calls):  # a new channel per call: a shared port would spread new connections
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = case_api_pb2_grpc.CaseAPIStub(channel)
            try:
                stub.ListProjects(case_api_pb2.ListProjectsRequest(), metadata=metadata, timeout=10)
                outcomes.append("OK")
            except grpc.RpcError as exc:
                outcomes.append(exc.code().name)
    return outcomes


def _one_clear_line(casem: Casem, *needles: str) -> str:
    assert casem.exit_code() != 0, casem.output
    assert "Traceback" not in casem.output, casem.output
    [line] = error_lines(casem.output)
    for needle in needles:
        assert needle in line, line
    return line


def test_a_second_up_on_the_same_grpc_port_fails_and_shares_nothing(first, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    casem, ports = first
    api_key, app_key = keys(casem.output)
    # As the issue found it: other HTTP and Temporal ports, the same gRPC port.
    others = {"http": free_port(), "grpc": ports["grpc"], "intake": free_port(), "temporal": free_port()}
    second = Casem.start(["up"], casem_env(tmp_path / "second", **others))
    line = _one_clear_line(second, f"port {ports['grpc']}", "case-api gRPC", "--grpc-port")
    assert "already in use" in line
    assert "casem is up" not in second.output
    assert not (tmp_path / "second" / "case-management.db").exists()  # nothing was started, not even migrations
    assert _list_projects(ports["grpc"], api_key, app_key, 20) == ["OK"] * 20


def test_a_second_up_on_the_same_data_directory_is_refused(first, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    casem, _ = first
    others = {"http": free_port(), "grpc": free_port(), "intake": free_port(), "temporal": free_port()}
    second = Casem.start(["up", "--services", LIGHT], casem_env(tmp_path / "first", **others))
    line = _one_clear_line(second, "another casem up", str(casem.proc.pid), "CASEM_DATA_DIR")
    assert "is using the data directory" in line


def test_run_case_intake_beside_up_fails_clearly(first, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    casem, ports = first
    env = casem_env(tmp_path / "first", grpc=ports["grpc"], ops=free_port())
    intake = Casem.start(["run", "case-intake"], env)
    _one_clear_line(intake, f"port {ports['grpc']}", "case-intake gRPC", "--grpc-port")
    assert "serving" not in intake.output
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:  # case-api alone answers there
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="casem.v1.CaseAPI"), timeout=10
        )
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_a_taken_http_port_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = casem_env(tmp_path, http=taken, grpc=free_port())
        api = Casem.start(["run", "case-api"], env)
        _one_clear_line(api, f"port {taken}", "case-api HTTP", "--http-port", "CASEM_HTTP_PORT")
        up = Casem.start(["up", "--services", "case-api"], casem_env(tmp_path / "up", http=taken, grpc=free_port()))
        _one_clear_line(up, f"port {taken}", "--http-port")


def _grpc_server(options: list[tuple[str, int]]) -> grpc.Server:
    return grpc.server(futures.ThreadPoolExecutor(1), options=options)


def _bind(options: list[tuple[str, int]], port: int) -> int:
    try:
        return _grpc_server(options).add_insecure_port(f"127.0.0.1:{port}")
    except RuntimeError:  # newer grpcio raises where older ones returned 0
        return 0


def test_two_grpc_servers_never_share_a_port() -> None:
    # With gRPC's default (SO_REUSEPORT on) a second server binds a taken port: what the issue saw.
    default = _grpc_server([])
    shared = default.add_insecure_port("127.0.0.1:0")
    assert _bind([], shared) == shared
    default.stop(0)

    first = _grpc_server(server_options())
    port = first.add_insecure_port("127.0.0.1:0")
    first.start()
    try:
        assert _bind(server_options(), port) == 0
        assert _bind([], port) == 0  # not even a server with the default options shares casem's port
        with pytest.raises(PortInUse) as caught:
            add_grpc_port(_grpc_server(server_options()), f"127.0.0.1:{port}", "second server")
        assert caught.value.port == port
    finally:
        first.stop(0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_up_with_a_stopped_line(tmp_path: Path, sig: signal.Signals) -> None:
    ports = {"http": free_port(), "grpc": free_port(), "intake": free_port()}
    casem = Casem.start(["up", "--services", LIGHT], casem_env(tmp_path, **ports))
    try:
        casem.up()
        code, took = casem.stop(sig)
    finally:
        casem.kill()
    assert code == 0, casem.output
    assert took < 15, took  # the grace period (10 s) and the hard stop after it (15 s)
    assert casem.output.rstrip().splitlines()[-1].startswith(f"casem stopped ({sig.name}")
    assert "Traceback" not in casem.output


def test_a_stop_signal_during_start_up_ends_it_at_once(tmp_path: Path) -> None:
    casem = Casem.start(["up", "--services", LIGHT], casem_env(tmp_path, http=free_port(), grpc=free_port()))
    try:
        casem.wait_for("casem up:")  # starting: migrations, then the services
        code, took = casem.stop(signal.SIGTERM)
    finally:
        casem.kill()
    assert code == 0, casem.output
    assert took < 15, took
    assert "casem stopped" in casem.output.rstrip().splitlines()[-1]
    assert "Traceback" not in casem.output


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ("case-api,nope", "unknown service 'nope'"),
        ("case-api,case-api-v9", "unknown service 'case-api-v9'"),
    ],
)
def test_up_services_names_what_it_can_run(tmp_path: Path, services: str, message: str) -> None:
    casem = Casem.start(["up", "--services", services], casem_env(tmp_path, http=free_port(), grpc=free_port()))
    assert casem.exit_code() == 2
    [line] = error_lines(casem.output)
    assert message in line and "case-api, case-event-relay" in line
    assert not (tmp_path / "case-management.db").exists()
