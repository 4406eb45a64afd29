"""Every classification row, fed recorded evidence: each check's negative controls as observations.

Each case is one attempt's evidence in the shape the witness gathers it (client result, the
routers' records, the Traffic Controller's events) and the specific outcome the table must give.
A check whose failure rows are all here has been seen failing, each for its own reason.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from harness import verdicts as v
from harness.outcomes import DIAGNOSES, Observation, Outcome
from harness.protocol.proxy_protocol import V2_SIGNATURE
from harness.protocol.wire import TcpStream
from harness.witness import Evidence

GUID = "6a1b9a0e-2b3c-4d5e-8f90-1a2b3c4d5e6f"


def ev(outcome: dict[str, Any] | None = None, *, delivery: dict[str, Any] | None = None,
       routers: tuple[dict[str, Any], ...] = (), tc: tuple[dict[str, Any], ...] = (), **client: Any) -> Evidence:
    extra = dict(client.pop("extra", {}))
    result = {"outcome": {"connected": True, **(outcome or {})}, "delivery": delivery or {}, **client}
    return Evidence("a1", 100.0, 110.0, result, routers, tc, extra)


def done(n: int, **more: Any) -> dict[str, Any]:
    return {"unique": n, "lost": 0, "out_of_order": 0, "lost_ranges": [], "duplicates": 0, "max_seq": n - 1, **more}


REFUSED = {"connected": False, "error_kind": "connect_refused", "error": "dial: connect_refused"}
SILENT = {"connected": False, "error_kind": "connect_timeout"}
HUNG = {"connected": False, "error_kind": "handshake_timeout"}
STATUS_400 = {"connected": False, "error_kind": "handshake_status", "handshake_status": 400}
PLAIN_GET = {"router": "router-0", "ts": 101.0, "path": f"/apps/{GUID}/stream", "upgrade": False, "status": 400,
             "attempt": "a1"}
UPGRADED = {**PLAIN_GET, "upgrade": True, "status": 101}
AT_ROUTER_401 = {**PLAIN_GET, "upgrade": True, "status": 401}
V2_BYTES = {"router": "router-0", "ts": 101.0, "path": None, "status": 400, "proxy_v2_signature": True,
            "proxy_v1_line": False, "attempt": "a1"}
V1_BEFORE_TLS = {"router": "router-0", "ts": 101.0, "path": None, "status": None, "tls": True,
                 "tls_handshake_failed": "tls_handshake: SSLError('wrong version number')", "proxy_v1_line": True,
                 "proxy_v2_signature": False, "proxy_source": "10.0.0.2:40000", "attempt": None}
TC_REJECTED = {"event": "handshake_rejected", "status": 400, "attempt": "a1", "ts": 101.0}


def closed(by: str, ts: float = 105.0) -> dict[str, Any]:
    return {"event": "stream_closed", "closed_by": by, "attempt": "a1", "ts": ts}


CASES: list[tuple[str, Callable[[], Observation], Outcome]] = [
    # ---- handshake and stream (logs, firehose, auth, crafted, faults) --------------------------------
    ("complete stream", lambda: v.classify_stream(ev(delivery=done(10)), 10), Outcome.PASS),
    ("envelopes missing", lambda: v.classify_stream(ev(delivery={"unique": 7, "lost": 3}), 10), Outcome.INCOMPLETE),
    ("out of order", lambda: v.classify_stream(ev(delivery=done(10, out_of_order=2)), 10), Outcome.OUT_OF_ORDER),
    ("cut mid-way", lambda: v.classify_stream(ev({"closed_by": "server", "close_code": 1006},
                                                 delivery={"unique": 3, "lost": 7}), 10), Outcome.STREAM_CUT),
    ("closed 1008", lambda: v.classify_stream(ev({"closed_by": "server", "close_code": 1008},
                                                 delivery={"unique": 3, "lost": 7}), 10), Outcome.CLOSED_UNEXPECTEDLY),
    ("refused port", lambda: v.classify_stream(ev(REFUSED), 10), Outcome.DIAL_REFUSED),
    ("SYN unanswered is not a handshake timeout", lambda: v.classify_stream(ev(SILENT), 1), Outcome.CONNECT_TIMEOUT),
    ("handshake unanswered", lambda: v.classify_stream(ev(HUNG), 1), Outcome.HANDSHAKE_TIMEOUT),
    ("no DNS", lambda: v.classify_stream(ev({"connected": False, "error_kind": "dns"}), 1), Outcome.DNS_FAILED),
    ("discovery 502 is not a handshake status",
     lambda: v.classify_stream(ev({"connected": False, "error_kind": "discovery", "handshake_status": 502}), 1),
     Outcome.DISCOVERY_FAILED),
    ("plain GET at the router, TC 400", lambda: v.classify_stream(ev(STATUS_400, routers=(PLAIN_GET,),
                                                                     tc=(TC_REJECTED,)), 1), Outcome.UPGRADE_STRIPPED),
    ("a bare 400 with no router evidence is not upgrade_stripped",
     lambda: v.classify_stream(ev(STATUS_400), 1), Outcome.HANDSHAKE_REJECTED),
    ("a bare 400 is not proxy_header_rejected either",
     lambda: v.classify_stream(ev(STATUS_400, routers=({**V2_BYTES, "proxy_v2_signature": False},)), 1),
     Outcome.HANDSHAKE_REJECTED),
    ("PROXY v2 signature in the router's bytes", lambda: v.classify_stream(ev(STATUS_400, routers=(V2_BYTES,)), 1),
     Outcome.PROXY_HEADER_REJECTED),
    ("PROXY v2 met first by discovery",
     lambda: v.classify_stream(ev({"connected": False, "error_kind": "discovery", "handshake_status": 400},
                                  routers=(V2_BYTES,)), 1), Outcome.PROXY_HEADER_REJECTED),
    ("handshake broke off", lambda: v.classify_stream(ev({"connected": False, "error_kind": "handshake_failed"}), 1),
     Outcome.HANDSHAKE_FAILED),
    ("PROXY v1 line before TLS on a router that does not read it",
     lambda: v.classify_stream(ev({"connected": False, "error_kind": "handshake_failed"}, routers=(V1_BEFORE_TLS,)), 1),
     Outcome.PROXY_HEADER_REJECTED),
    ("a TLS handshake failed on other bytes is no PROXY diagnosis",
     lambda: v.classify_stream(ev({"connected": False, "error_kind": "handshake_failed"},
                                  routers=({**V1_BEFORE_TLS, "proxy_v1_line": False},)), 1),
     Outcome.HANDSHAKE_FAILED),
    ("503 from TC", lambda: v.classify_stream(ev({**STATUS_400, "handshake_status": 503}), 1),
     Outcome.HANDSHAKE_REJECTED),
    # ---- auth -----------------------------------------------------------------------------------------
    ("401 with Basic", lambda: v.classify_handshake_status(ev({**STATUS_400, "handshake_status": 401,
                                                               "handshake_headers": [["WWW-Authenticate", "Basic"]]},
                                                              routers=(AT_ROUTER_401,)), 401), Outcome.PASS),
    ("401 without challenge", lambda: v.classify_handshake_status(ev({**STATUS_400, "handshake_status": 401},
                                                                     routers=(AT_ROUTER_401,)), 401),
     Outcome.AUTH_CHALLENGE_WRONG),
    ("the LB's own 404 (no router saw the handshake) is not TC's",
     lambda: v.classify_handshake_status(ev({**STATUS_400, "handshake_status": 404}), 404), Outcome.HANDSHAKE_REJECTED),
    ("403 where 404 is due", lambda: v.classify_handshake_status(ev({**STATUS_400, "handshake_status": 403}), 404),
     Outcome.HANDSHAKE_REJECTED),
    ("connected where 401 is due", lambda: v.classify_handshake_status(ev(), 401), Outcome.UNEXPECTED_STATUS),
    # ---- plain requests (recent logs, echo) -----------------------------------------------------------
    ("recent logs 200", lambda: v.classify_status(ev(status=200), 200), Outcome.PASS),
    ("recent logs 404 (today's TC)", lambda: v.classify_status(ev(status=404), 200), Outcome.UNEXPECTED_STATUS),
    ("recent logs refused", lambda: v.classify_status(ev(status=None, error_kind="connect_refused", error="x"), 200),
     Outcome.DIAL_REFUSED),
    ("recent logs PROXY v2", lambda: v.classify_status(ev(status=400, routers=(V2_BYTES,)), 200),
     Outcome.PROXY_HEADER_REJECTED),
    # ---- the noaa-faithful client after a RST (rst_keepalive) ----------------------------------------
    ("keepalive found the dead stream, re-dialled",
     lambda: v.classify_rst_keepalive(ev({"breaks": [{"at_s": 18.2, "received_so_far": 60, "close_code": 1006,
                                                       "transport_error": "ConnectionResetError"}]},
                                         delivery={"unique": 400}, extra={"injected": {"seq": 1}})), Outcome.PASS),
    ("keepalive off: never learned", lambda: v.classify_rst_keepalive(ev({"closed_by": "client"},
                                                                          tc=(closed("lost"),),
                                                                          extra={"injected": {"seq": 1}})),
     Outcome.HALF_OPEN),
    ("broke but never came back",
     lambda: v.classify_rst_keepalive(ev({"breaks": [{"at_s": 18.2, "received_so_far": 60}]},
                                         delivery={"unique": 60}, extra={"injected": {"seq": 1}})),
     Outcome.NOT_RECOVERED),
    ("no RST sent", lambda: v.classify_rst_keepalive(ev({"closed_by": "client"}, extra={"injected": None})),
     Outcome.IMPAIRMENT_NOT_APPLIED),
    ("RST raced data in flight: the client learned from the LB's answer, not its keepalive",
     lambda: v.classify_rst_keepalive(ev({"breaks": [{"at_s": 2.8, "received_so_far": 54, "close_code": 1006}]},
                                         delivery={"unique": 390}, extra={"injected": {"seq": 1, "raced": True}})),
     Outcome.IMPAIRMENT_NOT_APPLIED),
    # ---- idle -----------------------------------------------------------------------------------------
    ("held open", lambda: v.classify_idle(ev({"closed_by": "client"}, tc=(closed("client"),))), Outcome.PASS),
    ("LB idle cut", lambda: v.classify_idle(ev({"closed_by": "server", "close_code": 1006}, tc=(closed("lost"),))),
     Outcome.IDLE_CUT),
    ("cut but TC closed it itself: not an LB idle cut",
     lambda: v.classify_idle(ev({"closed_by": "server", "close_code": 1006}, tc=(closed("tc"),))),
     Outcome.CLOSED_UNEXPECTEDLY),
    ("keepalive close is not an idle cut",
     lambda: v.classify_idle(ev({"closed_by": "server", "close_code": 1008}, tc=(closed("tc"),))),
     Outcome.CLOSED_UNEXPECTEDLY),
    # ---- RST injection --------------------------------------------------------------------------------
    ("RST half-open", lambda: v.classify_rst(ev({"closed_by": "client"}, tc=(closed("lost", 103.5),),
                                                extra={"injected": {"seq": 1}})), Outcome.HALF_OPEN),
    ("RST ignored", lambda: v.classify_rst(ev({"closed_by": "client"}, tc=(closed("client", 110.0),),
                                              extra={"injected": {"seq": 1}})), Outcome.RST_IGNORED),
    ("RST reached the client", lambda: v.classify_rst(ev({"closed_by": "server", "close_code": 1006},
                                                         extra={"injected": {"seq": 1}})), Outcome.STREAM_CUT),
    ("injector sent nothing", lambda: v.classify_rst(ev({"closed_by": "client"}, extra={"injected": None})),
     Outcome.IMPAIRMENT_NOT_APPLIED),
    ("RST raced data in flight", lambda: v.classify_rst(ev({"closed_by": "server", "close_code": 1006},
                                                         extra={"injected": {"seq": 1, "raced": True}})),
     Outcome.IMPAIRMENT_NOT_APPLIED),
    ("an out-of-window RST is judged even if the client sent something after it",
     lambda: v.classify_rst(ev({"closed_by": "client"}, tc=(closed("client", 110.0),),
                               extra={"injected": {"seq": 1, "raced": True, "in_window": False}})),
     Outcome.RST_IGNORED),
    # ---- re-dial after a break (reset gap, router death) ----------------------------------------------
    ("recovered with one gap", lambda: v.classify_redial(ev({"breaks": [{"received_so_far": 400}]},
                                                            delivery=done(900, lost=100, lost_ranges=[[400, 499]],
                                                                          max_seq=999)), 1000), Outcome.PASS),
    ("never broke", lambda: v.classify_redial(ev({"breaks": []}, delivery=done(1000)), 1000), Outcome.FAULT_NOT_SEEN),
    ("never recovered (the old check passed this: unique + lost == N)",
     lambda: v.classify_redial(ev({"breaks": [{"received_so_far": 400}], "closed_by": "server"},
                                  delivery={"unique": 400, "lost": 600, "lost_ranges": [[400, 999]],
                                            "max_seq": 399}), 1000), Outcome.NOT_RECOVERED),
    ("two gaps", lambda: v.classify_redial(ev({"breaks": [{"received_so_far": 400}]},
                                              delivery=done(880, lost=120, lost_ranges=[[400, 499], [600, 619]],
                                                            max_seq=999)), 1000), Outcome.LOSS_PATTERN),
    ("moved to the other router",
     lambda: v.classify_router_death(ev({"breaks": [{"received_so_far": 400}]},
                                        delivery=done(900, lost=100, lost_ranges=[[400, 499]], max_seq=999),
                                        routers=({**UPGRADED, "router": "router-1", "ts": 104.0},)),
                                     1000, "router-0", 103.0), Outcome.PASS),
    ("the 101 after the kill came from the victim",
     lambda: v.classify_router_death(ev({"breaks": [{"received_so_far": 400}]},
                                        delivery=done(900, lost=100, lost_ranges=[[400, 499]], max_seq=999),
                                        routers=({**UPGRADED, "ts": 104.0},)), 1000, "router-0", 103.0),
     Outcome.SAME_ROUTER),
    ("a 101 before the kill does not count as the survivor",
     lambda: v.classify_router_death(ev({"breaks": [{"received_so_far": 400}]},
                                        delivery=done(900, lost=100, lost_ranges=[[400, 499]], max_seq=999),
                                        routers=({**UPGRADED, "router": "router-1", "ts": 102.0},)),
                                     1000, "router-0", 103.0), Outcome.SAME_ROUTER),
    # ---- firehose -------------------------------------------------------------------------------------
    ("firehose split", lambda: v.classify_firehose([ev(seqs=[0, 2]), ev(seqs=[1, 3]), ev(seqs=[0, 1, 2, 3])], 4),
     Outcome.PASS),
    ("both shared nozzles got everything",
     lambda: v.classify_firehose([ev(seqs=[0, 1, 2, 3]), ev(seqs=[0, 1, 2, 3]), ev(seqs=[0, 1, 2, 3])], 4),
     Outcome.FIREHOSE_SPLIT_WRONG),
    ("one nozzle refused", lambda: v.classify_firehose([ev(REFUSED), ev(), ev()], 4), Outcome.DIAL_REFUSED),
    # ---- forwarding headers ---------------------------------------------------------------------------
    ("XFF client", lambda: v.classify_xff("10.0.0.2, 10.1.0.5", "10.0.0.2", {"10.1.0.5"}), Outcome.PASS),
    ("XFF names the LB", lambda: v.classify_xff("10.1.0.5", "10.0.0.2", {"10.1.0.5"}), Outcome.LB_IP_AS_CLIENT),
    ("XFF stripped", lambda: v.classify_xff(None, "10.0.0.2", {"10.1.0.5"}), Outcome.XFF_WRONG),
    ("XFP right", lambda: v.classify_xfp({"http": "http", "https": "https"}), Outcome.PASS),
    ("XFP http on https", lambda: v.classify_xfp({"http": "http", "https": "http"}), Outcome.XFP_WRONG),
    # ---- kernel impairments ---------------------------------------------------------------------------
    ("blackhole seen by keepalive", lambda: v.classify_silent_cut(
        ev({"closed_by": "client"}, tc=({"event": "keepalive_timeout", "attempt": "a1", "ts": 104.0},),
           extra={"matched": 12})), Outcome.KEEPALIVE_1008),
    ("blackhole rule matched nothing", lambda: v.classify_silent_cut(
        ev({"closed_by": "client"}, tc=({"event": "keepalive_timeout", "attempt": "a1", "ts": 104.0},),
           extra={"matched": 0})), Outcome.IMPAIRMENT_NOT_APPLIED),
    ("nobody noticed", lambda: v.classify_silent_cut(ev({"closed_by": "client"}, extra={"matched": 12})),
     Outcome.STILL_OPEN),
    ("reset rule cut", lambda: v.classify_kernel_reset(ev({"closed_by": "server", "close_code": 1006},
                                                          extra={"matched": 3})), Outcome.STREAM_CUT),
    ("reset rule matched nothing", lambda: v.classify_kernel_reset(ev({"closed_by": "client"}, extra={"matched": 0})),
     Outcome.IMPAIRMENT_NOT_APPLIED),
    ("loss rule matched nothing", lambda: v.classify_impaired_stream(ev(delivery=done(10)), 10, "0 packets dropped"),
     Outcome.IMPAIRMENT_NOT_APPLIED),
]


@pytest.mark.parametrize("case, classify, outcome", CASES, ids=[c[0] for c in CASES])
def test_classification_table(case: str, classify: Callable[[], Observation], outcome: Outcome) -> None:
    seen = classify()
    assert isinstance(seen, Observation) and seen.outcome is outcome, f"{case}: {seen}"


def stream(c2s: bytes, s2c: bytes, client: tuple[str, int] = ("10.0.0.2", 40000)) -> TcpStream:
    return TcpStream(client, ("10.1.0.5", 80), {1: c2s}, {1: s2c})


HANDSHAKE = (f"GET /apps/{GUID}/stream HTTP/1.1\r\nHost: doppler.sys.example.com\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n").encode()
PLAIN = HANDSHAKE.replace(b"Upgrade: websocket\r\nConnection: Upgrade\r\n", b"Connection: close\r\n")
BINARY = bytes([0x82, 3]) + b"abc"  # unmasked binary frame (server -> client)
MASKED = bytes([0x88, 0x82, 1, 2, 3, 4, 0, 0])  # masked close frame (client -> server)
OK_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + BINARY


WIRE_CASES: list[tuple[str, Callable[[], Observation], Outcome]] = [
    ("HTTP mode, upgraded", lambda: v.classify_wire(stream(HANDSHAKE + MASKED, OK_101), stream(HANDSHAKE + MASKED, OK_101),
                                                    mode="http", proxy_v1=False)[0], Outcome.PASS),
    ("nothing captured", lambda: v.classify_wire(None, stream(HANDSHAKE, OK_101), mode="http", proxy_v1=False)[0],
     Outcome.NOT_CAPTURED),
    ("Upgrade dropped, 400", lambda: v.classify_wire(stream(PLAIN, b"HTTP/1.1 400 Bad Request\r\n\r\n"),
                                                     stream(HANDSHAKE, b"HTTP/1.1 400 Bad Request\r\n\r\n"),
                                                     mode="http", proxy_v1=False)[0], Outcome.UPGRADE_STRIPPED),
    ("server frames masked", lambda: v.classify_wire(
        stream(HANDSHAKE + MASKED, OK_101[:-5] + MASKED), stream(HANDSHAKE + MASKED, OK_101), mode="http",
        proxy_v1=False)[0], Outcome.WIRE_FRAMING_WRONG),
    ("no XFF from an HTTP LB", lambda: v.classify_wire(
        stream(HANDSHAKE.replace(b"X-Forwarded-For: 10.0.0.2\r\n", b""), OK_101), stream(HANDSHAKE, OK_101),
        mode="http", proxy_v1=False)[0], Outcome.XFF_WRONG),
    ("TCP mode passes bytes", lambda: v.classify_wire(stream(HANDSHAKE * 2, OK_101), stream(HANDSHAKE * 2, OK_101),
                                                      mode="tcp", proxy_v1=False)[0], Outcome.PASS),
    ("TCP mode changed bytes", lambda: v.classify_wire(stream(PLAIN * 2, OK_101), stream(HANDSHAKE * 2, OK_101),
                                                       mode="tcp", proxy_v1=False)[0], Outcome.WIRE_BYTES_CHANGED),
    ("PROXY line names someone else", lambda: v.classify_wire(
        stream(b"PROXY TCP4 10.9.9.9 10.1.0.5 1 80\r\n" + HANDSHAKE * 2, OK_101), stream(HANDSHAKE * 2, OK_101),
        mode="tcp", proxy_v1=True)[0], Outcome.WIRE_PROXY_HEADER_WRONG),
    ("PROXY line names the client", lambda: v.classify_wire(
        stream(b"PROXY TCP4 10.0.0.2 10.1.0.5 40000 80\r\n" + HANDSHAKE * 2, OK_101), stream(HANDSHAKE * 2, OK_101),
        mode="tcp", proxy_v1=True)[0], Outcome.PASS),
]


@pytest.mark.parametrize("case, classify, outcome", WIRE_CASES, ids=[c[0] for c in WIRE_CASES])
def test_wire_classification(case: str, classify: Callable[[], Observation], outcome: Outcome) -> None:
    seen = classify()
    assert seen.outcome is outcome, f"{case}: {seen}"


def test_every_outcome_has_a_diagnosis_and_v2_signature_is_the_real_one() -> None:
    assert set(DIAGNOSES) == set(Outcome)
    assert V2_SIGNATURE == b"\r\n\r\n\x00\r\nQUIT\n"  # HAProxy's proxy-protocol.txt, section 2.2
