"""Negative controls of the Scapy-peer checks (``tests/scenarios/test_tcp_peer.py``): the same
attempt without the thing each check is about must be reported as its own failure, not a pass. The
cell's four controls run at once (``concurrently``): the one with a flood reads the other app's stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import drivers, topology
from harness.deployment import Deployment
from harness.outcomes import Observation, Outcome
from tests.scenarios.test_tcp_peer import (APP, ENABLED, LB_IDLE_S, concurrently, half_close_attempt,
                                           segments_attempt, zero_window_attempt)

#: The checks' own cell configuration (the LB's idle timeout as in test_tcp_peer).
pytestmark = [pytest.mark.topology("tcp-same-port", driver="nginx", lb_idle=LB_IDLE_S),
              pytest.mark.skipif(not ENABLED, reason="Scapy-peer checks skipped: HARNESS_TCP_PEER=0")]


def control(dep: Deployment, name: str) -> tuple[Observation, dict[str, Any]]:
    """This cell's control attempt ``name``; all four run together the first time one is asked for."""
    return concurrently(dep, "_tcp_peer_controls", {
        "inorder": lambda: segments_attempt(dep, "inorder"),
        "openwindow": lambda: zero_window_attempt(dep, "openwindow", flood=1),
        "shut_no_flood": lambda: zero_window_attempt(dep, "zerowindow", flood=0, app=APP),
        "hold": lambda: half_close_attempt(dep, "hold")}, name)


def test_a_request_in_one_segment_is_reported_as_not_reordered(deployment: Deployment) -> None:
    """tcp_peer_segments: the request in one in-order segment -> wire_not_reordered."""
    seen, facts = control(deployment, "inorder")
    assert seen.outcome is Outcome.WIRE_NOT_REORDERED, (seen, facts)


def test_a_consumer_with_its_window_open_is_not_reported_as_a_zero_window(deployment: Deployment) -> None:
    """tcp_peer_zero_window: the same flood to a peer that keeps its window open ->
    impairment_not_applied (no zero-window ACK went out; whatever happened next proves nothing)."""
    seen, facts = control(deployment, "openwindow")
    assert seen.outcome is Outcome.IMPAIRMENT_NOT_APPLIED, (seen, facts)


def test_a_shut_window_with_nothing_to_send_is_reported_still_open(deployment: Deployment) -> None:
    """tcp_peer_zero_window: the window shut but no flood: the TC's writer never blocks, so no
    slow-consumer cut -> still_open (a pass really rests on the TC's 5 s cut)."""
    seen, facts = control(deployment, "shut_no_flood")
    assert seen.outcome is Outcome.STILL_OPEN, (seen, facts)


def test_a_client_that_never_half_closes_is_reported_still_open(deployment: Deployment) -> None:
    """tcp_peer_half_close: the same stream without the client's FIN -> still_open."""
    seen, facts = control(deployment, "hold")
    assert seen.outcome is Outcome.STILL_OPEN, (seen, facts)


ROOT = Path(__file__).resolve().parents[2]
#: The nginx template's line that makes send_timeout follow the idle timeout (see nginx.yaml).
SEND_TIMEOUT_LINE = "    send_timeout {{ lb.idle_timeout | int }}s;\n"
#: The Varnish template's half of varnishd's two timers on a stalled piped client (see varnish.yaml).
IDLE_SEND_PARAM = " -p idle_send_timeout={{ lb.idle_timeout | int }}"


def stock_zero_window(tmp_path: Path, driver: str, template: str, setting: str) -> tuple[Observation, dict[str, Any]]:
    """tcp_peer_zero_window through ``driver`` at LB idle LB_IDLE_S, its template without ``setting``
    (the LB's default for it then holds): a copy of the driver, ``<driver>-stock``, in ``tmp_path``."""
    text = (ROOT / "topologies/drivers" / template).read_text()
    assert setting in text
    (tmp_path / f"stock-{template}").write_text(text.replace(setting, ""))
    spec = (ROOT / f"topologies/drivers/{driver}.yaml").read_text()
    (tmp_path / "stock.yaml").write_text(spec.replace(f"name: {driver}", f"name: {driver}-stock", 1)
                                         .replace(f"template: {template}", f"template: stock-{template}", 1))
    topo = topology.load_all()["http-upgrade"].with_driver(f"{driver}-stock").with_idle_timeout(LB_IDLE_S)
    with Deployment(topo, drivers.load_all(tmp_path), results_dir=tmp_path) as dep:
        return zero_window_attempt(dep, "zerowindow")


@pytest.mark.waits(45)
@pytest.mark.xdist_group("tcp-peer-nginx-stock-send-timeout")
@pytest.mark.skipif(not ENABLED, reason="Scapy-peer checks skipped: HARNESS_TCP_PEER=0")
def test_nginx_with_its_stock_send_timeout_holds_a_stalled_client_past_its_idle_timeout(tmp_path: Path) -> None:
    """tcp_peer_zero_window: nginx in mode http, idle timeout 20 s, but send_timeout left at its 60 s
    default (the driver's template without its send_timeout line) -> lb_holds_connection: a client
    that stops reading is timed by send_timeout, which is why the template sets it."""
    seen, facts = stock_zero_window(tmp_path, "nginx", "nginx.conf.j2", SEND_TIMEOUT_LINE)
    assert seen.outcome is Outcome.LB_HOLDS_CONNECTION, (seen, facts)


@pytest.mark.waits(45)
@pytest.mark.xdist_group("tcp-peer-varnish-stock-idle-send-timeout")
@pytest.mark.skipif(not ENABLED, reason="Scapy-peer checks skipped: HARNESS_TCP_PEER=0")
def test_varnish_with_its_stock_idle_send_timeout_holds_a_stalled_client_past_its_idle_timeout(tmp_path: Path) -> None:
    """tcp_peer_zero_window: Varnish piping the stream, pipe_timeout 20 s, but idle_send_timeout left
    at its 60 s default (the driver's template without it) -> lb_holds_connection: a write blocked on
    a client that reads nothing is timed by idle_send_timeout, which is why the template sets it."""
    seen, facts = stock_zero_window(tmp_path, "varnish", "varnish.vcl.j2", IDLE_SEND_PARAM)
    assert seen.outcome is Outcome.LB_HOLDS_CONNECTION, (seen, facts)
