"""Kernel-level impairments in a node's network namespace (iptables, tc, cgroup freezer).

Every verdict rests on one client run's evidence (``harness.witness``) and on proof that the
impairment took effect (``harness.impair.Effect``): the packets its iptables rules hit, the bytes
its qdisc sent, the freezer state while paused, the stall the client measured. An impairment that
did not take effect is reported as ``impairment_not_applied``, never judged. The Traffic
Controller's keepalive is shortened (ping every 1 s, 4 s for a pong) so a silent drop is noticed
within the test's bound. Where the kernel lacks a feature (netem here) that case is recorded as not
applicable, naming the feature.

Negative controls (end of the module, one cell): each check's impairment put where the stream does
not pass must be reported as exactly that.

| check | control | outcome it must report |
|---|---|---|
| kernel_loss | the loss rule on a port nobody uses | impairment_not_applied |
| kernel_blackhole | the blackhole on a port nobody uses, under an idle stream | impairment_not_applied |
| kernel_bandwidth | the cap on the LB's router-side interface (envelopes only enter there) | impairment_not_applied |
| every iptables impairment | a rule iptables refuses | HarnessError with iptables' message |
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from harness.background import Background
from harness.deployment import ClientRun, Deployment
from harness.errors import HarnessError, ScenarioError
from harness.impair import Effect, Impairments, KernelFeatureMissing, netem_missing
from harness.timeline_chart import details as timeline_details
from harness.outcomes import Observation, Outcome
from harness.timeouts import scaled
from harness.verdicts import (
    classify_impaired_stream,
    classify_kernel_reset,
    classify_shaped_stream,
    classify_silent_cut,
)
from harness.witness import Evidence

FAST = {"TC_KEEPALIVE_INTERVAL": "1", "TC_KEEPALIVE_TIMEOUT": "4"}
pytestmark = [pytest.mark.topology(name, tc=FAST) for name in ("http-upgrade", "tcp-same-port")]
CONTROL_CELL = pytest.mark.topology("http-upgrade", driver="nginx", tc=FAST)
Verdict = Callable[..., None]
Cut = Callable[[ClientRun], contextlib.AbstractContextManager[Effect]]

UNUSED_PORT = 9  # discard: nothing in a cell listens or dials there
LOSS = 0.1  # share of the stream's packets the loss rule drops
#: An idle client's budget under a silent cut: the cut lands ~1 s after connecting, TC's next ping
#: within 1 s, its pong timeout 4 s later; the cut holds until this budget is spent.
SILENT_HOLD_S = 8.0
CAP_KBIT, CAP_SLACK = 4000, 1.3  # kernel_bandwidth: a measured rate above cap x slack was not capped
PAUSE_S, MIN_STALL_S = 2.0, 1.5  # kernel_pause: a pause the client did not feel as a stall was not one
DELAY_MS, DELAY_FLOOR_MS = 100, 80.0  # kernel_delay: a p50 below the floor was not delayed


def _port(dep: Deployment) -> int:
    return dep.topology.logger_port


def _lb(dep: Deployment) -> str:
    """The LB node that carries the log stream."""
    return dep.topology.dns["doppler"]


def stream_attempt(dep: Deployment, n: int, *, rate: float = 0, size: int = 0, timeout: float = 40,
                   extra: tuple[str, ...] = (), during: Callable[[], Any] = lambda: None
                   ) -> tuple[ClientRun, dict[str, Any]]:
    """One log stream fed ``n`` envelopes at ``rate`` once it is connected, ``during`` run while the
    emitter feeds it: the run and its result (evidence is gathered once the impairment is gone)."""
    run = dep.stream_logs("dev", n, timeout=timeout, extra=extra)
    if run.wait_event("connected", 20):
        emitter = Background(dep.emit, n, rate=rate, size=size)
        during()
        emitter.join(scaled(timeout))
    return run, run.result(timeout + 30)


def _figures(ev: Evidence) -> dict[str, Any]:
    return dict(ev.extra.get("impairment") or {})


# ---- kernel_loss ------------------------------------------------------------------------------------


def loss_attempt(dep: Deployment, port: int, n: int) -> Evidence:
    """A stream of ``n`` envelopes through a rule dropping LOSS of the client's packets from ``port``."""
    with Impairments(dep).loss("client", port, LOSS) as effect:
        run, result = stream_attempt(dep, n, rate=250)
    return dep.evidence(run, result, matched=effect.matched, counted=effect.counted, impairment=effect.figures())


def observe_loss(ev: Evidence, n: int) -> Observation:
    """``kernel_loss``: the stream is whole, and the rule did drop packets of it."""
    applied = None if ev.extra["matched"] else (f"the loss rule dropped {ev.extra['matched']} of the "
                                                 f"{ev.extra['counted']} packets from its port")
    return classify_impaired_stream(ev, n, applied)


@pytest.mark.check("kernel_loss")
@pytest.mark.waits(10)
def test_random_packet_loss_is_absorbed_by_tcp(deployment: Deployment, verdict: Verdict) -> None:
    ev = loss_attempt(deployment, _port(deployment), 500)
    verdict("kernel_loss", observe_loss(ev, 500), evidence=ev, dropped=ev.extra["matched"],
            of_packets=ev.extra["counted"], p99_ms=ev.client["delivery"]["latency_ms_p99"], impairment=_figures(ev),
            **timeline_details(ev.client))


# ---- kernel_blackhole, kernel_partition: silent cuts -----------------------------------------------


def silent_cut_attempt(dep: Deployment, cut: Cut, *, hold: float = SILENT_HOLD_S) -> tuple[Evidence, Effect | None]:
    """An idle stream the client holds for ``hold`` s; once it is connected, ``cut(run)`` is applied
    until the client's budget is spent. Lifting the cut earlier would let what it held back (the
    TC's 1008 close) reach a client still reading, and the client would report a close it was never
    sent while the cut lasted; lifted after, it lands in the client's own close."""
    run = dep.stream_logs("dev", 0, timeout=hold)
    if not run.wait_event("connected", 20):
        return dep.evidence(run, run.result(hold + 30)), None
    budget_spent = time.monotonic() + scaled(hold) + 0.2  # the budget runs from before the dial
    with cut(run) as effect:
        time.sleep(max(0.0, budget_spent - time.monotonic()))
    result = run.result(30)
    return dep.evidence(run, result, matched=effect.matched, impairment=effect.figures()), effect


def _silent_details(ev: Evidence) -> dict[str, Any]:
    fired = ev.tc_events("keepalive_timeout")
    return {"dropped": ev.extra.get("matched"), "client": ev.outcome.get("closed_by"),
            "keepalive_after_s": round(float(fired[0]["ts"]) - ev.started, 1) if fired else None}


@pytest.mark.check("kernel_blackhole")
@pytest.mark.waits(15)
def test_silent_blackhole_is_noticed_only_by_the_keepalive(deployment: Deployment, verdict: Verdict) -> None:
    imp = Impairments(deployment)
    ev, _ = silent_cut_attempt(deployment, lambda run: imp.blackhole("client", _port(deployment)))
    verdict("kernel_blackhole", classify_silent_cut(ev), evidence=ev, **_silent_details(ev), impairment=_figures(ev),
            **timeline_details(ev.client))


def serving_router(dep: Deployment, run: ClientRun) -> str:
    """The router that answered this attempt's handshake with 101 (its own record, this attempt only)."""
    upgrades = [r for r in dep.witness.router_records(run.attempt, run.started, time.time()) if r.get("status") == 101]
    if len(upgrades) != 1:
        raise ScenarioError(f"attempt {run.attempt}: expected one router to have upgraded it, found {len(upgrades)}",
                            repr(upgrades))
    return str(upgrades[0]["router"])


@pytest.mark.check("kernel_partition")
@pytest.mark.waits(15)
def test_partitioned_router_is_noticed_only_by_the_keepalive(deployment: Deployment, verdict: Verdict) -> None:
    """The serving router loses its network (LB side and TC side at once): nothing is reset."""
    imp = Impairments(deployment)
    ev, effect = silent_cut_attempt(deployment, lambda run: imp.partition(serving_router(deployment, run)))
    verdict("kernel_partition", classify_silent_cut(ev), evidence=ev, partitioned=effect.node if effect else None,
            **_silent_details(ev), impairment=_figures(ev),
            **timeline_details(ev.client))


# ---- kernel_reset ------------------------------------------------------------------------------------


@pytest.mark.check("kernel_reset")
def test_tcp_reset_from_the_lb_kernel_cuts_the_stream(deployment: Deployment, verdict: Verdict) -> None:
    """The LB's kernel answers every packet to the logger port with RST: the client's next pong."""
    run = deployment.stream_logs("dev", 0, timeout=15)
    if not run.wait_event("connected", 20):
        ev = deployment.evidence(run, run.result(45))
    else:
        with Impairments(deployment).tcp_reset(_lb(deployment), _port(deployment)) as effect:
            result = run.result(40)
        ev = deployment.evidence(run, result, matched=effect.matched, impairment=effect.figures())
    verdict("kernel_reset", classify_kernel_reset(ev), evidence=ev, rejected=ev.extra.get("matched"),
            outcome=ev.outcome, impairment=_figures(ev), **timeline_details(ev.client))


# ---- kernel_bandwidth --------------------------------------------------------------------------------


def measured_kbit(ev: Evidence, size: int) -> int | None:
    """The envelope payload rate the client received (kbit/s), None when too little arrived to time."""
    delivery = ev.client.get("delivery") or {}
    span = delivery.get("receive_span_s") or 0
    return round(int(delivery.get("unique") or 0) * size * 8 / 1000 / span) if span else None


def cap_not_applied(ev: Evidence, kbit: int, size: int) -> str | None:
    """Why the cap did not shape the stream, or None: its qdisc sent at least the envelope bytes the
    client got, and the rate the client measured stays under ``kbit`` x CAP_SLACK."""
    qdisc = _figures(ev).get("qdisc") or {}
    payload = int((ev.client.get("delivery") or {}).get("unique") or 0) * size
    if int(qdisc.get("bytes", 0)) < payload:
        return (f"the tbf on {_figures(ev).get('device')} sent {qdisc.get('bytes', 0)} B, less than the "
                f"{payload} B of envelopes the client got: the stream did not cross it")
    rate = measured_kbit(ev, size)
    if rate is not None and rate > kbit * CAP_SLACK:
        return f"the client measured {rate} kbit/s through a {kbit} kbit/s cap"
    return None


def capped_attempt(dep: Deployment, kbit: int, *, n: int, size: int, network: str, settle: float) -> Evidence:
    """An unthrottled emitter behind a ``kbit`` cap on the LB's interface on ``network``."""
    with Impairments(dep).bandwidth(_lb(dep), kbit, network=network) as effect:
        run, result = stream_attempt(dep, n, size=size, timeout=60, extra=("--settle", str(settle)))
    return dep.evidence(run, result, impairment=effect.figures())


@pytest.mark.check("kernel_bandwidth")
def test_bandwidth_cap_is_enforced_and_the_stream_survives_it(deployment: Deployment, verdict: Verdict) -> None:
    """An unthrottled emitter behind a cap on the LB's client-side egress: the stream stays up at the
    capped rate, and Loggregator's drop-oldest buffers (Doppler, TC: 1000 envelopes each) shed what
    does not fit. The loss is reported, not failed: it is the platform's designed behaviour."""
    n, size = 1500, 1000
    ev = capped_attempt(deployment, CAP_KBIT, n=n, size=size, network="edge", settle=3)
    qdisc = _figures(ev).get("qdisc") or {}
    verdict("kernel_bandwidth", classify_shaped_stream(ev, cap_not_applied(ev, CAP_KBIT, size)), evidence=ev,
            cap_kbit=CAP_KBIT, measured_kbit=measured_kbit(ev, size), qdisc_bytes=qdisc.get("bytes"),
            overlimits=qdisc.get("overlimits"), lost=ev.client["delivery"]["lost"], impairment=_figures(ev),
            **timeline_details(ev.client))


# ---- kernel_pause ------------------------------------------------------------------------------------


def pause_not_applied(ev: Evidence) -> str | None:
    """Why the pause did not take effect, or None: the freezer said frozen throughout, and the client
    felt it as a stall of at least MIN_STALL_S."""
    freezer = _figures(ev).get("freezer") or []
    delivery = ev.client.get("delivery") or {}
    stall = float(delivery.get("max_stall_s") or 0)
    # An envelope emitted as the pause began cannot arrive before it ends: its delivery latency shows
    # the stall even when a busy client was still draining its socket buffer (no gap in arrivals).
    held = float(delivery.get("latency_ms_max") or 0) / 1000
    if not ev.extra.get("frozen"):
        return f"the LB was not frozen while paused: {freezer}"
    if max(stall, held) < MIN_STALL_S:
        return (f"the longest stall the client saw was {stall} s and the longest delivery {held:.3f} s "
                f"in a {PAUSE_S:g} s pause")
    return None


@pytest.mark.check("kernel_pause")
def test_paused_lb_stalls_then_delivers_everything(deployment: Deployment, verdict: Verdict) -> None:
    imp = Impairments(deployment)
    effects: list[Effect] = []

    def pause() -> None:
        time.sleep(1)  # ~200 envelopes through first
        with imp.pause(_lb(deployment)) as effect:
            effects.append(effect)
            time.sleep(PAUSE_S)

    run, result = stream_attempt(deployment, 1000, rate=200, during=pause)
    effect = effects[0] if effects else None
    ev = deployment.evidence(run, result, frozen=effect.frozen if effect else None,
                             impairment=effect.figures() if effect else {})
    verdict("kernel_pause", classify_impaired_stream(ev, 1000, pause_not_applied(ev)), evidence=ev,
            max_stall_s=ev.client["delivery"]["max_stall_s"], frozen=ev.extra["frozen"],
            p99_ms=ev.client["delivery"]["latency_ms_p99"], impairment=_figures(ev),
            **timeline_details(ev.client))


# ---- kernel_delay ------------------------------------------------------------------------------------


def record_not_applicable(verdict: Verdict, check: str, reason: str) -> None:
    """Record ``check`` as not applicable (n/a in the report, with ``reason``)."""
    verdict(check, Observation(Outcome.NOT_APPLICABLE, reason))


def delay_not_applied(ev: Evidence) -> str | None:
    qdisc = _figures(ev).get("qdisc") or {}
    p50 = (ev.client.get("delivery") or {}).get("latency_ms_p50")
    if not qdisc.get("packets"):
        return f"the netem qdisc on {_figures(ev).get('device')} sent no packet"
    if p50 is not None and p50 < DELAY_FLOOR_MS:
        return f"p50 {p50:.0f} ms < {DELAY_FLOOR_MS:g} ms behind a {DELAY_MS} ms delay"
    return None


@pytest.mark.check("kernel_delay")
def test_netem_delay_where_the_kernel_has_it(deployment: Deployment, verdict: Verdict) -> None:
    """100 +- 20 ms on the LB's client-side egress: the stream is complete, in order, and delayed."""
    if reason := netem_missing(deployment):
        record_not_applicable(verdict, "kernel_delay", reason)
        return
    try:
        with Impairments(deployment).delay(_lb(deployment), DELAY_MS, 20, network="edge") as effect:
            run, result = stream_attempt(deployment, 300, rate=300)
    except KernelFeatureMissing as exc:
        record_not_applicable(verdict, "kernel_delay", str(exc))
        return
    ev = deployment.evidence(run, result, impairment=effect.figures())
    verdict("kernel_delay", classify_impaired_stream(ev, 300, delay_not_applied(ev)), evidence=ev,
            p50_ms=ev.client["delivery"]["latency_ms_p50"], qdisc_packets=_figures(ev).get("qdisc", {}).get("packets"),
            impairment=_figures(ev))


# ---- negative controls --------------------------------------------------------------------------------


@CONTROL_CELL
def test_loss_on_an_unused_port_is_reported_not_applied(deployment: Deployment) -> None:
    """kernel_loss: the same rule on a port nobody uses drops nothing -> impairment_not_applied, not
    pass, although the stream is whole."""
    ev = loss_attempt(deployment, UNUSED_PORT, 100)
    seen = observe_loss(ev, 100)
    assert seen.outcome is Outcome.IMPAIRMENT_NOT_APPLIED, seen
    assert ev.extra["matched"] == ev.extra["counted"] == 0 and ev.client["delivery"]["lost"] == 0


@CONTROL_CELL
def test_blackhole_on_an_unused_port_is_reported_not_applied(deployment: Deployment) -> None:
    """kernel_blackhole: the DROP rules on a port nobody uses, under an idle stream held 2 s ->
    impairment_not_applied, not still_open or keepalive_1008."""
    imp = Impairments(deployment)
    ev, _ = silent_cut_attempt(deployment, lambda run: imp.blackhole("client", UNUSED_PORT), hold=2)
    seen = classify_silent_cut(ev)
    assert seen.outcome is Outcome.IMPAIRMENT_NOT_APPLIED, seen
    assert ev.extra["matched"] == 0


@CONTROL_CELL
def test_cap_on_an_interface_the_envelopes_only_enter_is_reported_not_applied(deployment: Deployment) -> None:
    """kernel_bandwidth: the cap on the LB's router-side interface, where envelopes arrive (tbf
    shapes egress: only ACKs leave there) -> impairment_not_applied, not pass."""
    size = 1000
    ev = capped_attempt(deployment, CAP_KBIT, n=1500, size=size, network="cf", settle=1)
    seen = classify_shaped_stream(ev, cap_not_applied(ev, CAP_KBIT, size))
    assert seen.outcome is Outcome.IMPAIRMENT_NOT_APPLIED, seen


@CONTROL_CELL
def test_a_rule_iptables_refuses_fails_the_install_loudly(deployment: Deployment) -> None:
    """The install itself: a rule iptables refuses (probability 1.5) raises with iptables' own words
    instead of leaving a check to run unimpaired, and no tagged rule stays behind."""
    imp = Impairments(deployment)
    with pytest.raises(HarnessError, match="out of range"), imp.loss("client", _port(deployment), 1.5):
        pytest.fail("the body ran without the impairment")
    code, rules = imp.run("client", "iptables-save -t filter")
    assert code == 0 and "--comment harness-" not in rules, rules
