"""Crafted traffic through every LB: a handshake cut into tiny TCP segments, legal but unusual
header casing, and a TCP RST injected into a live stream with Scapy. Each verdict joins the matrix
and rests on one attempt's evidence (its router records, TC events and TCP streams)."""

from __future__ import annotations

from typing import Callable

import pytest

from harness.capture import inject_rst
from harness.deployment import APP_GUID, Deployment
from harness.timeline_chart import details as timeline_details
from harness.outcomes import Observation, Outcome
from harness.verdicts import classify_rst, classify_stream
from harness.witness import Evidence

pytestmark = [pytest.mark.topology(name) for name in ("http-upgrade", "http-only-elb", "tcp-same-port")]
Verdict = Callable[..., None]
#: How long the client holds the stream: the RST goes in 3 s after the injector starts and the LB and
#: TC act on it within milliseconds, so 8 s leaves the client ample time to learn of it (it never does).
RST_HOLD_S = 8
#: The negative control's RST: far outside the receiver's window, so RFC 793/5961 make it drop it.
OUT_OF_WINDOW = 1 << 30


def _url(dep: Deployment) -> str:
    return f"ws://{dep.topology.fqdn('doppler')}:80/apps/{APP_GUID}/stream"


#: The split handshake is about 70 writes of 3 bytes; fewer segments than this on the wire means the
#: kernel or a hop coalesced them and the check did not test what it says.
MIN_SEGMENTS = 20


def split_attempt(dep: Deployment, split: int) -> tuple[Evidence, int]:
    """A hand-written handshake in ``split``-byte writes: its evidence and how many TCP segments
    its stream had on the client's wire."""
    run = dep.client_run("crafted", _url(dep), "--token", "bearer dev", "--split", str(split))
    ev = dep.evidence(run, run.result(60))
    streams = [s for s in dep.witness.streams("client", run) if s.server[1] == 80]
    return ev, max((len(s.c2s_segments) for s in streams), default=0)


def observe_split(ev: Evidence, segments: int) -> Observation:
    """``crafted_split_handshake``: the split handshake got its answer, and it really was split."""
    seen = classify_stream(ev, 0)
    if seen.outcome is Outcome.PASS and segments < MIN_SEGMENTS:
        return Observation(Outcome.WIRE_NOT_SPLIT, f"{segments} segments on the wire")
    return seen


@pytest.mark.check("crafted_split_handshake")
def test_handshake_split_into_tiny_segments(deployment: Deployment, verdict: Verdict) -> None:
    ev, segments = split_attempt(deployment, 3)
    verdict("crafted_split_handshake", observe_split(ev, segments), evidence=ev, segments_on_wire=segments,
            status=ev.client.get("status_line"))


@pytest.mark.check("crafted_header_casing")
def test_unusual_but_legal_header_casing(deployment: Deployment, verdict: Verdict) -> None:
    run = deployment.client_run("crafted", _url(deployment), "--token", "bearer dev", "--split", "4096",
                                "--casing", "odd")
    ev = deployment.evidence(run, run.result(30))
    verdict("crafted_header_casing", classify_stream(ev, 0), evidence=ev, status=ev.client.get("status_line"))


def rst_attempt(dep: Deployment, *, seq_offset: int = 0) -> Evidence:
    """Scapy, in the client's namespace, resets the client->LB connection of a live stream 3 s in
    (``seq_offset`` != 0: outside the window, the control that must change nothing)."""
    injector = inject_rst(dep.nodes["client"], port=80, after=3, seq_offset=seq_offset)
    run = dep.client_run("logs", "--endpoint", f"ws://{dep.topology.fqdn('doppler')}:80",
                         "--app", APP_GUID, "--token", "bearer dev", "--timeout", str(RST_HOLD_S))
    result = run.result(45)
    return dep.evidence(run, result, injected=(injector.wait_event("result", 30) or {}).get("injected"))


@pytest.mark.check("crafted_rst")
@pytest.mark.waits(8)
def test_rst_injected_into_a_live_stream(deployment: Deployment, verdict: Verdict) -> None:
    ev = rst_attempt(deployment)
    verdict("crafted_rst", classify_rst(ev), evidence=ev, injected=ev.extra["injected"],
            tc_closed_by=ev.tc_closed_by(), outcome=ev.outcome, **timeline_details(ev.client))
