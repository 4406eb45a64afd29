"""Scale-out, for real: the matrix split over two shards and merged gives the one-run report, and the
harness runs against a Docker engine reached over TCP (``DOCKER_HOST=tcp://127.0.0.1:<port>``) with
nothing shared through the local filesystem.

The engine is this machine's, reached through a relay (TCP on loopback -> the engine's unix socket)
that also reads every API request the harness makes: a container created with a bind mount or a
volume would share files with this host, which a remote engine cannot.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import h11
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Two cheap cells (the advertised-port mismatch: every check is an expected, fast refusal).
SELECTION = ["tests/scenarios/test_matrix.py", "-k", "auth_401 or xff", "--topology", "tcp-alt-port-mismatch",
             "--lb", "nginx,haproxy"]


class EngineRelay:
    """TCP on 127.0.0.1 -> the engine's unix socket; parses each request (h11) to keep the
    container-create bodies."""

    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.creates: list[dict[str, Any]] = []
        self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(self.unix_path)
            threading.Thread(target=self._pipe, args=(client, engine, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(engine, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        parser = h11.Connection(h11.SERVER) if requests else None
        body, target = b"", b""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if parser is None:
                    continue
                try:
                    parser.receive_data(data)
                    while (event := parser.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                        if isinstance(event, h11.Request):
                            self.requests += 1
                            target, body = event.target, b""
                        elif isinstance(event, h11.Data):
                            body += event.data
                        elif isinstance(event, h11.EndOfMessage):
                            if b"/containers/create" in target:
                                self.creates.append(json.loads(body or b"{}"))
                            # The engine's answers are not parsed: play a blank one so h11 reads on.
                            parser.send(h11.Response(status_code=204, headers=[]))
                            parser.send(h11.EndOfMessage())
                            parser.start_next_cycle()
                except (h11.ProtocolError, ValueError):
                    parser = None  # an attach/exec stream switched protocols: just relay
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


def _engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.fail(f"DOCKER_HOST={host}: this test relays a local unix socket; run it with the local engine")
    return host.removeprefix("unix://")


def _run(results: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q", "-n", "0",
           *SELECTION, "--results-dir", str(results), *extra]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "HARNESS_RUN_DIR_FILE"}
    proc = subprocess.run(cmd, cwd=ROOT, env={**inherited, **(env or {})}, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads((results / "latest" / "report.json").read_text())


def _verdicts(report: dict[str, Any]) -> list[tuple[str, ...]]:
    return sorted((r["variant"], r["check"], r["expected"], r["observed"], str(r["ok"])) for r in report["records"])


@pytest.mark.scenario
@pytest.mark.waits(90)
def test_two_shards_over_a_tcp_engine_merge_into_the_one_run_report(tmp_path: Path) -> None:
    from harness import report, topology

    relay = EngineRelay(_engine_socket())
    try:
        one = _run(tmp_path / "one")
        shard1 = _run(tmp_path / "s1", "--shard", "1/2", env={"DOCKER_HOST": f"tcp://127.0.0.1:{relay.port}"})
    finally:
        relay.close()
    shard2 = _run(tmp_path / "s2", "--shard", "2/2")
    assert {r["variant"] for r in shard1["records"]}.isdisjoint({r["variant"] for r in shard2["records"]})
    merged_path = report.merge([tmp_path / "s1" / "latest", tmp_path / "s2" / "latest"], tmp_path / "merged",
                               topology.load_all())[0]
    merged = json.loads(merged_path.read_text())
    assert len(one["records"]) == 4, one["records"]  # 2 cells x 2 checks
    assert _verdicts(merged) == _verdicts(one)
    assert merged["meta"]["counts"] == one["meta"]["counts"]
    # Shard 1 really went through the TCP engine, and no container it made shares host files.
    cells = {r["variant"] for r in shard1["records"]}
    # Every node of shard 1's cell (ten at least: the CF side, the client, the LB) was created through
    # the TCP engine, not just one: no code path went around DOCKER_HOST.
    assert len(relay.creates) >= 10 * len(cells), f"{len(relay.creates)} containers created through the TCP engine " \
                                                  f"for {len(cells)} cell(s) ({relay.requests} requests seen)"
    engine_socket = "/var/run/docker.sock:/var/run/docker.sock"
    shared = []
    for create in relay.creates:
        host = create.get("HostConfig") or {}
        # Ryuk mounts the engine's own socket (a path on the engine's host, not this machine's files)
        binds = [b for b in host.get("Binds") or [] if not b.startswith(engine_socket)]
        volumes = [v for v in create.get("Volumes") or {} if v != engine_socket.partition(":")[0]]
        if binds or volumes or host.get("Mounts") or host.get("VolumesFrom") or host.get("Devices"):
            shared.append((create.get("Image"), binds, volumes, host.get("Mounts"), host.get("VolumesFrom"),
                           host.get("Devices")))
    assert not shared, f"containers sharing host files with this machine: {shared}"
