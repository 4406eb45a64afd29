"""The closed vocabulary of outcomes: what a check can observe, each with the diagnosis a person reads.

Predictions (``harness.verdicts.expected``) and observations (``harness.verdicts.classify_*``) speak
only these words, so a check passes when the observed outcome is the predicted one, and an expected
failure is asserted as the specific failure it must be. ``Outcome`` is a ``str`` Enum: its value is
what the report and JSON carry. An ``Observation`` adds the figures that back it (``detail``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(str, Enum):
    # ---- success ----------------------------------------------------------------------------------
    PASS = "pass"
    # ---- before the WebSocket handshake --------------------------------------------------------------
    DISCOVERY_FAILED = "discovery_failed"
    DNS_FAILED = "dns_failed"
    DIAL_REFUSED = "dial_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    # ---- the handshake -------------------------------------------------------------------------------
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    UPGRADE_STRIPPED = "upgrade_stripped"
    PROXY_HEADER_REJECTED = "proxy_header_rejected"
    HANDSHAKE_REJECTED = "handshake_rejected"
    HANDSHAKE_FAILED = "handshake_failed"
    UNEXPECTED_STATUS = "unexpected_status"
    # ---- the stream ----------------------------------------------------------------------------------
    INCOMPLETE = "incomplete"
    OUT_OF_ORDER = "out_of_order"
    STREAM_CUT = "stream_cut"
    IDLE_CUT = "idle_cut"
    KEEPALIVE_1008 = "keepalive_1008"
    HALF_OPEN = "half_open"
    RST_IGNORED = "rst_ignored"
    CLOSED_UNEXPECTEDLY = "closed_unexpectedly"
    STILL_OPEN = "still_open"
    FAULT_NOT_SEEN = "fault_not_seen"
    NOT_RECOVERED = "not_recovered"
    SAME_ROUTER = "same_router"
    LOSS_PATTERN = "loss_pattern"
    FIREHOSE_SPLIT_WRONG = "firehose_split_wrong"
    # ---- forwarding headers --------------------------------------------------------------------------
    LB_IP_AS_CLIENT = "lb_ip_as_client"
    PROXY_IP_AS_CLIENT = "proxy_ip_as_client"
    XFF_WRONG = "xff_wrong"
    XFP_WRONG = "xfp_wrong"
    AUTH_CHALLENGE_WRONG = "auth_challenge_wrong"
    # ---- what crossed the wire -----------------------------------------------------------------------
    NOT_CAPTURED = "not_captured"
    WIRE_UPGRADE_DROPPED = "wire_upgrade_dropped"
    WIRE_FRAMING_WRONG = "wire_framing_wrong"
    WIRE_BYTES_CHANGED = "wire_bytes_changed"
    WIRE_PROXY_HEADER_WRONG = "wire_proxy_header_wrong"
    WIRE_NOT_SPLIT = "wire_not_split"
    # ---- the fault itself ----------------------------------------------------------------------------
    IMPAIRMENT_NOT_APPLIED = "impairment_not_applied"
    NOT_APPLICABLE = "not_applicable"
    # ---- today's log paths (Log Cache, RLP gateway, foundation profiles) -------------------------------
    RECENT_LOGS_GONE = "recent_logs_gone"
    LOG_READ_DENIED = "log_read_denied"
    TLS_FAILED = "tls_failed"
    RESPONSE_BUFFERED = "response_buffered"
    # ---- frame fidelity (harness.frame_checks) -----------------------------------------------------
    FRAME_ALTERED = "frame_altered"
    CONTROL_FRAME_LOST = "control_frame_lost"
    CLOSE_ALTERED = "close_altered"
    PIPELINED_DATA_LOST = "pipelined_data_lost"
    BASELINE_FAILED = "baseline_failed"
    # ---- Scapy as the TCP peer (harness.tcp_peer_checks) -------------------------------------------
    WIRE_NOT_REORDERED = "wire_not_reordered"
    LB_HOLDS_CONNECTION = "lb_holds_connection"

    def __str__(self) -> str:
        return self.value

    @property
    def diagnosis(self) -> str:
        return DIAGNOSES[self]


DIAGNOSES: dict[Outcome, str] = {
    Outcome.PASS: "works",
    Outcome.DISCOVERY_FAILED: "GET /v2/info did not answer 200: the client never learned where to dial",
    Outcome.DNS_FAILED: "the logging endpoint's host name did not resolve",
    Outcome.DIAL_REFUSED: "the client dialled the advertised logger port, where the LB does not listen "
                          "(connection refused)",
    Outcome.CONNECT_TIMEOUT: "the TCP connection to the LB was never established (SYN unanswered)",
    Outcome.HANDSHAKE_TIMEOUT: "TCP connected but the handshake got no answer; the client gave up at its open "
                               "timeout instead of hanging",
    Outcome.UPGRADE_STRIPPED: "LB dropped the Upgrade header: the router received a plain GET and the Traffic "
                              "Controller answered 400 (websocket: bad handshake)",
    Outcome.PROXY_HEADER_REJECTED: "LB sent a PROXY header the routers cannot read (gorouter reads only v1, and "
                                   "only with enable_proxy): it reached the HTTP parser and the router answered "
                                   "400 Bad Request",
    Outcome.HANDSHAKE_REJECTED: "the handshake was answered with a status other than 101",
    Outcome.HANDSHAKE_FAILED: "the handshake broke off (connection closed or answer malformed)",
    Outcome.UNEXPECTED_STATUS: "a plain HTTP request got another status than the check needs",
    Outcome.INCOMPLETE: "the stream stayed up but envelopes went missing",
    Outcome.OUT_OF_ORDER: "envelopes arrived out of order",
    Outcome.STREAM_CUT: "the stream was cut mid-way (peer closed without a close frame) and the client saw it "
                        "within its bound",
    Outcome.IDLE_CUT: "LB closed the stream after its idle timeout: keepalive pings were further apart than it",
    Outcome.KEEPALIVE_1008: "packets silently dropped: the client saw nothing, and only the Traffic Controller's "
                            "keepalive noticed (no pong, close 1008)",
    Outcome.HALF_OPEN: "the LB accepted the injected RST and the Traffic Controller lost the stream, but nothing "
                       "reached the client: it sits on a dead stream until it next writes",
    Outcome.RST_IGNORED: "the injected RST changed nothing: the stream stayed up end to end",
    Outcome.CLOSED_UNEXPECTEDLY: "the stream closed in a way the check does not explain (see detail)",
    Outcome.STILL_OPEN: "the stream should have been cut but was still open when the client ended it",
    Outcome.FAULT_NOT_SEEN: "the injected fault never reached the client: no break was recorded",
    Outcome.NOT_RECOVERED: "after the break the client never got the stream back: the last envelopes never came",
    Outcome.SAME_ROUTER: "after the router died the re-dialled stream was not carried by another router",
    Outcome.LOSS_PATTERN: "loss is not the single gap the break explains (several gaps or duplicates)",
    Outcome.FIREHOSE_SPLIT_WRONG: "nozzles sharing a subscription did not split the firehose, or the solo nozzle "
                                  "missed envelopes",
    Outcome.LB_IP_AS_CLIENT: "the router saw the LB's address as the client (TCP mode without PROXY protocol, or "
                             "an HTTP-mode LB that sets no X-Forwarded-For), so the app's X-Forwarded-For names "
                             "the LB, not the client",
    Outcome.PROXY_IP_AS_CLIENT: "a fault proxy (a TCP hop) sits between client and LB: the LB sees the proxy's "
                                "address, so X-Forwarded-For starts with it",
    Outcome.XFF_WRONG: "X-Forwarded-For does not start with the client's address",
    Outcome.XFP_WRONG: "X-Forwarded-Proto does not name the scheme the client used",
    Outcome.AUTH_CHALLENGE_WRONG: "the 401 lacks the Traffic Controller's WWW-Authenticate: Basic challenge",
    Outcome.NOT_CAPTURED: "the probes did not capture this attempt's TCP stream: nothing to judge on the wire",
    Outcome.WIRE_UPGRADE_DROPPED: "on the wire, the LB in HTTP mode did not pass Upgrade/Connection to the router",
    Outcome.WIRE_FRAMING_WRONG: "WebSocket frames broke RFC 6455 on a hop (server frames masked, client frames "
                                "unmasked, or no binary frames)",
    Outcome.WIRE_BYTES_CHANGED: "the LB in TCP mode changed the client's bytes",
    Outcome.WIRE_PROXY_HEADER_WRONG: "the PROXY header the router got does not name the client",
    Outcome.WIRE_NOT_SPLIT: "the handshake was not split into small segments on the wire",
    Outcome.IMPAIRMENT_NOT_APPLIED: "the impairment did not take effect (no packet matched, no stall, no delay): "
                                    "the check cannot judge anything",
    Outcome.NOT_APPLICABLE: "the check cannot run here (see the reason)",
    Outcome.RECENT_LOGS_GONE: "the Traffic Controller answered 404 to /apps/{guid}/recentlogs: since Loggregator "
                              "107 it no longer serves recent logs (cf CLI >= 6.50 reads them from Log Cache)",
    Outcome.LOG_READ_DENIED: "Log Cache or the RLP gateway answered 404: the token cannot read this source (both "
                             "answer 404, never 401, for a missing, invalid or unauthorised token)",
    Outcome.RESPONSE_BUFFERED: "the RLP gateway wrote the events but the LB held them back (it buffers proxied "
                               "responses, e.g. nginx proxy_buffering on): the v2 nozzle got them late or never; "
                               "turn buffering off for log-stream.<system domain>",
    Outcome.TLS_FAILED: "the TLS handshake to the HTTPS endpoint failed (nothing or something else than TLS "
                        "answered on the port)",
    Outcome.FRAME_ALTERED: "a WebSocket message arrived changed: its reassembled bytes or length differ from "
                           "what the other end sent",
    Outcome.CONTROL_FRAME_LOST: "a ping or pong did not cross, or crossed with another payload",
    Outcome.CLOSE_ALTERED: "the close code or reason that arrived differs from the one sent",
    Outcome.PIPELINED_DATA_LOST: "data written right behind the handshake request never reached the Traffic "
                                 "Controller",
    Outcome.BASELINE_FAILED: "the same exchange failed straight to the Traffic Controller, without the LB: the "
                             "stand-ins are at fault, so nothing can be said about the LB",
    Outcome.WIRE_NOT_REORDERED: "the request did not cross the client's wire out of order and overlapping: the "
                                "check did not test what it says",
    Outcome.LB_HOLDS_CONNECTION: "the Traffic Controller's side ended but the LB still holds a connection of the "
                                 "stream open (to the client, or to a router that closed)",
}


@dataclass(frozen=True)
class Observation:
    """What one attempt showed: an outcome and the figures behind it."""

    outcome: Outcome
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.outcome.value}" + (f" ({self.detail})" if self.detail else "")


def observed(outcome: Outcome, detail: str = "") -> Observation:
    return Observation(outcome, detail)
