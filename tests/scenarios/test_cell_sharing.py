"""Cells of a worker share the CF side (``Deployment.reuse``): a later cell keeps a node of the
previous one only when it would start it exactly the same and the node runs as it was started (a
router started again after a kill, once it listens; a tainted node found as it was before).
Each reason to refuse is shown on real containers, and the mixed cell still carries a stream."""

from __future__ import annotations

import time

import docker
import pytest

from harness import drivers as driver_registry
from harness import topology as topology_registry
from harness.deployment import Deployment
from harness.outcomes import Outcome
from harness.verdicts import classify_stream

pytestmark = pytest.mark.scenario
N = 50


def _cell(topology: str, driver: str, reuse: Deployment | None = None, tc: dict[str, str] | None = None,
          faults: tuple[str, ...] = ()) -> Deployment:
    from harness.plugin import _CellDeployment

    drivers = driver_registry.load_all()
    topo = topology_registry.load_all()[topology].with_driver(driver)
    dep = _CellDeployment(topo, drivers, tc=tc or {}, reuse=reuse, faults=faults)
    dep.__enter__()
    return dep


def _exists(container_id: str) -> bool:
    try:
        docker.from_env().containers.get(container_id)
        return True
    except docker.errors.NotFound:
        return False


def test_a_later_cell_keeps_only_what_it_would_start_the_same_and_finds_unchanged() -> None:
    first = _cell("http-upgrade", "nginx")
    second = None
    try:
        first.probe_all(["client", "router-0", "router-1"])
        for _ in range(4):  # traffic through both routers, into their probes' pcaps
            assert first.http_get()["status"] == 200
        probe_id = first.probes["router-0"].ident
        started = {name: node.started_at for name, node in first.nodes.items()}
        first.nodes["router-1"].kill()  # as router failover does: a new process, a new namespace
        first.nodes["router-1"].start()
        first.nodes["log-cache"].restart()  # a restart keeps only a router (RESTARTABLE_ROLES)
        first.nodes["app"].tainted = True  # tainted for good, as a pause taints (nothing noted to compare)
        ids = {name: node.docker.id for name, node in first.nodes.items()}
        edge = first.networks["edge"].name
        # tcp-alt-port advertises wss://...:8443: set on the running CC, which is kept. A fault
        # proxy between Doppler and the TC starts the TC differently (TC_DOPPLER_URLS).
        second = _cell("tcp-alt-port", "haproxy", reuse=first, faults=("doppler-tc",))
        kept = {"doppler", "cc", "rlp-gateway", "router-0", "router-1", "client"}
        assert set(second.reused) == kept
        assert all(second.nodes[name].docker.id == ids[name] for name in kept)
        replaced = {"tc": "its spec", "log-cache": "restarted", "app": "tainted", "lb": "per cell"}
        for name, why in replaced.items():
            assert second.nodes[name].docker.id != ids[name], f"{name} kept although {why}"
            assert not _exists(ids[name]), f"the first cell's {name} was left running"
        assert second.networks["edge"].name == edge  # kept, with the client on it
        assert first.nodes == {} and first.networks == {}
        # the kept client stayed: on the edge network only, and no endpoint of the old LB is left there
        client_networks = set(docker.from_env().containers.get(ids["client"]).attrs["NetworkSettings"]["Networks"])
        assert client_networks == {edge}
        on_edge = set(docker.from_env().networks.get(edge).attrs["Containers"])
        assert ids["lb"] not in on_edge and second.nodes["lb"].docker.id in on_edge
        assert "client" in second.probes and second.probes["client"].rotations == 1
        # a kept node keeps its probe, whose pcap now starts at this cell (the first cell's packets gone)
        probe = second.probes["router-0"]
        assert probe.ident == probe_id and probe.rotations == 1
        assert min(float(p.time) for p in probe.packets()) >= second.began_at
        assert "router-1" not in second.probes  # its capture ended with the restart: dropped, not signalled
        # the restarted router was kept once it listened again, and carries traffic
        assert second.nodes["router-1"].started_at != started["router-1"]
        served = set()
        for _ in range(4):  # the LB balances over both routers
            get = second.client_run("http", f"http://{second.topology.fqdn('echo')}/")
            assert get.result(30)["status"] == 200
            served |= {r["router"] for r in second.witness.router_records(get.attempt, get.started, time.time())}
        assert served == {"router-0", "router-1"}, served
        # the mixed cell works end to end: the kept TC with the new CC, through the new LB
        run = second.stream_logs("dev", N, timeout=30)
        if connected := run.wait_event("connected", 15):
            second.emit(N)
            assert connected["url"].startswith("wss://doppler.sys.example.com:8443/"), connected  # the kept CC's
        seen = classify_stream(second.evidence(run, run.result(60)), N)
        assert seen.outcome is Outcome.PASS, seen
    finally:
        if second is not None:
            second.stop()
        first.stop()



def test_a_tainted_client_is_not_kept_but_replaced() -> None:
    """The negative control of the kept client: one tainted for good (a pause; nothing noted to
    compare) is removed with its cell, and the next cell starts its own."""
    first = _cell("http-upgrade", "nginx")
    second = None
    try:
        old = first.nodes["client"].docker.id
        first.nodes["client"].taint()  # its rules and qdiscs noted: they will read the same
        first.nodes["client"].taint(for_good=True)  # as a pause taints it
        second = _cell("http-upgrade", "haproxy", reuse=first)
        assert "client" not in second.reused and second.nodes["client"].docker.id != old
        assert not _exists(old), "the tainted client was left running"
        assert second.http_get()["status"] == 200
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_a_tainted_client_found_as_it_was_is_kept_one_with_a_rule_left_is_not() -> None:
    """A test that removed what it added (an impairment's or a Scapy peer's iptables rule) leaves
    the client as it found it: the next cell keeps it. Its control: the same rule left in place,
    and the next cell starts a client of its own."""
    rule = ["OUTPUT", "-p", "tcp", "--dport", "9", "-m", "comment", "--comment", "harness-test", "-j", "DROP"]
    cells: list[Deployment] = []
    try:
        cells.append(_cell("http-upgrade", "nginx"))
        client = cells[0].nodes["client"]
        client.taint()
        assert client.exec(["iptables", "-I", *rule])[0] == 0 and client.net_state() != client.clean_state
        assert client.exec(["iptables", "-D", *rule])[0] == 0
        cells.append(_cell("http-upgrade", "haproxy", reuse=cells[0]))
        assert "client" in cells[1].reused and not cells[1].nodes["client"].tainted
        cells[1].nodes["client"].taint()
        assert cells[1].nodes["client"].exec(["iptables", "-I", *rule])[0] == 0  # left in place
        cells.append(_cell("http-upgrade", "nginx", reuse=cells[1]))
        assert "client" not in cells[2].reused and cells[2].nodes["client"].docker.id != client.docker.id
        assert not _exists(client.docker.id), "the client with a rule left was kept running"
        assert cells[2].http_get()["status"] == 200
    finally:
        for cell in reversed(cells):
            cell.stop()


def test_the_kept_edge_network_carries_each_cells_lb_and_goes_with_the_last_cell() -> None:
    """Three cells in turn on one edge network: each cell's LB answers the names there (the echo
    app through HAProxy, then nginx, each LB's own log shows the request), a container the old
    cell left on it is cut off (as an old LB whose removal failed would be), and the network is
    removed with the last cell."""
    cells: list[Deployment] = []
    edge, stray = "", None
    try:
        cells.append(_cell("http-upgrade", "nginx"))
        client, edge = cells[0].nodes["client"].docker.id, cells[0].networks["edge"].name
        stray = docker.from_env().containers.run(cells[0].tags["cf"], ["idle"], detach=True, network=edge,
                                                 labels=cells[0].labels())
        for driver in ("haproxy", "nginx"):
            cells.append(_cell("http-upgrade", driver, reuse=cells[-1]))
            cell = cells[-1]
            assert cell.nodes["client"].docker.id == client and cell.networks["edge"].name == edge
            assert stray.id not in docker.from_env().networks.get(edge).attrs["Containers"]
            marker = f"/kept-edge-{driver}"
            assert cell.http_get(path=marker)["status"] == 200
            assert marker in cell.nodes["lb"].logs(), f"the request did not go through this cell's {driver}"
    finally:
        if stray is not None:
            stray.remove(force=True)
        for cell in reversed(cells):
            cell.stop()
    assert edge and not docker.from_env().networks.list(names=[edge]), f"{edge} was left behind"


def _timings_logged(dep: Deployment) -> list[dict[str, float]]:
    """The timings the TC was given since ``dep`` began (its ``timings`` events)."""
    import json

    lines = dep.nodes["tc"].logs(since=dep.began_at).splitlines()
    return [json.loads(line)["timings"] for line in lines if '"event": "timings"' in line]


def test_cells_that_differ_only_in_tc_timings_keep_the_tc_and_set_them_on_it() -> None:
    """A variant with shrunk keepalive timings keeps the TC and sets them on it; the next cell
    without timings keeps it too and puts the real defaults back."""
    cells: list[Deployment] = []
    try:
        cells.append(_cell("http-upgrade", "nginx"))
        tc_id = cells[0].nodes["tc"].docker.id
        assert _timings_logged(cells[0]) == []  # started with the defaults: nothing to set
        cells.append(_cell("http-upgrade", "nginx", reuse=cells[0],
                           tc={"TC_KEEPALIVE_INTERVAL": "1", "TC_KEEPALIVE_TIMEOUT": "4"}))
        assert "tc" in cells[1].reused and cells[1].nodes["tc"].docker.id == tc_id
        assert _timings_logged(cells[1])[-1] == {"keepalive_interval": 1.0, "keepalive_timeout": 4.0,
                                                 "slow_consumer": 5.0}
        cells.append(_cell("http-upgrade", "nginx", reuse=cells[1]))
        assert "tc" in cells[2].reused and cells[2].nodes["tc"].docker.id == tc_id
        assert _timings_logged(cells[2])[-1] == {"keepalive_interval": 15.0, "keepalive_timeout": 30.0,
                                                 "slow_consumer": 5.0}
    finally:
        for dep in reversed(cells):
            dep.stop()
