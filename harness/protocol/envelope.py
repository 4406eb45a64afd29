"""Dropsonde envelopes as the Traffic Controller sends them: one marshalled Envelope per binary frame.

The log line carries a sequence number (``seq=<n>``) so a consumer can account for every envelope
without trusting the transport; the LogMessage timestamp is the emit time, for delivery latency.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from harness.protocol.dropsonde.envelope_pb2 import Envelope
from harness.protocol.dropsonde.log_pb2 import LogMessage

ORIGIN = "harness-emitter"
_SEQ = re.compile(rb"^seq=(\d+)\b")


@dataclass(frozen=True)
class ReceivedLog:
    app_id: str
    seq: int | None  # None for log lines not written by the harness emitter
    message: bytes
    emitted_ns: int
    source_type: str


def encode_log(app_id: str, seq: int, text: str = "", *, now_ns: int | None = None,
               source_type: str = "APP", source_instance: str = "0") -> bytes:
    """Marshal one LogMessage envelope whose message starts with ``seq=<seq>``."""
    ts = time.time_ns() if now_ns is None else now_ns
    env = Envelope(origin=ORIGIN, eventType=Envelope.LogMessage, timestamp=ts, deployment="cf",
                   job="diego-cell", index="0", ip="10.0.0.1")
    env.logMessage.message = f"seq={seq} {text}".rstrip().encode()
    env.logMessage.message_type = LogMessage.OUT
    env.logMessage.timestamp = ts
    env.logMessage.app_id = app_id
    env.logMessage.source_type = source_type
    env.logMessage.source_instance = source_instance
    return env.SerializeToString()


def decode(data: bytes) -> Envelope:
    """Parse one envelope; raises ``DecodeError`` like noaa would (noaa then skips the frame)."""
    env = Envelope()
    env.ParseFromString(data)
    if not env.IsInitialized():
        raise DecodeError(f"envelope misses required fields: {env.FindInitializationErrors()}")
    return env


def app_id_of(env: Envelope) -> str | None:
    """The app an envelope belongs to (how Doppler routes app streams)."""
    if env.HasField("logMessage"):
        return env.logMessage.app_id or None
    if env.HasField("containerMetric"):
        return env.containerMetric.applicationId
    if env.HasField("httpStartStop"):
        return env.httpStartStop.applicationId or None
    return None


def as_log(env: Envelope) -> ReceivedLog | None:
    if env.eventType != Envelope.LogMessage or not env.HasField("logMessage"):
        return None
    msg = env.logMessage
    match = _SEQ.match(msg.message)
    return ReceivedLog(app_id=msg.app_id, seq=int(match.group(1)) if match else None, message=msg.message,
                       emitted_ns=msg.timestamp, source_type=msg.source_type)


def error_envelope(message: str, *, app_id: str = "") -> bytes:
    """An ERR LogMessage, as Loggregator injects for platform-side problems."""
    ts = time.time_ns()
    env = Envelope(origin="loggregator", eventType=Envelope.LogMessage, timestamp=ts)
    env.logMessage.message = message.encode()
    env.logMessage.message_type = LogMessage.ERR
    env.logMessage.timestamp = ts
    env.logMessage.app_id = app_id
    env.logMessage.source_type = "LGR"
    return env.SerializeToString()
