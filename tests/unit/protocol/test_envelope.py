from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from harness.protocol import envelope
from harness.protocol.dropsonde.envelope_pb2 import Envelope


def test_log_envelope_round_trips_with_sequence_and_timestamp() -> None:
    data = envelope.encode_log("app-1", 42, "hello", now_ns=1_700_000_000_000_000_000)
    env = envelope.decode(data)
    assert env.eventType == Envelope.LogMessage and env.origin == envelope.ORIGIN
    log = envelope.as_log(env)
    assert log is not None
    assert (log.app_id, log.seq, log.message, log.emitted_ns) == ("app-1", 42, b"seq=42 hello", 1_700_000_000_000_000_000)


def test_wire_format_uses_dropsonde_field_numbers() -> None:
    env = envelope.decode(envelope.encode_log("a", 1, now_ns=5))
    raw = env.SerializeToString()
    assert raw.startswith(b"\x0a")  # field 1 (origin), wire type 2
    assert b"\x10\x05" in raw  # field 2 eventType = LogMessage (5)
    assert b"\x42" in raw  # field 8 (logMessage), wire type 2


def test_truncated_frame_is_rejected_like_noaa_skips_it() -> None:
    with pytest.raises(DecodeError):
        envelope.decode(envelope.encode_log("a", 1)[:5])


def test_envelope_missing_required_fields_is_rejected() -> None:
    with pytest.raises(DecodeError):
        envelope.decode(b"")


def test_foreign_log_lines_have_no_sequence() -> None:
    env = Envelope(origin="rep", eventType=Envelope.LogMessage)
    env.logMessage.message, env.logMessage.message_type, env.logMessage.timestamp = b"plain line", 1, 1
    log = envelope.as_log(env)
    assert log is not None and log.seq is None


def test_app_id_of_container_metric() -> None:
    env = Envelope(origin="rep", eventType=Envelope.ContainerMetric)
    env.containerMetric.applicationId = "g"
    assert envelope.app_id_of(env) == "g"


def test_error_envelope_is_an_err_log_message() -> None:
    env = envelope.decode(envelope.error_envelope("boom", app_id="x"))
    assert env.logMessage.message_type == 2 and env.logMessage.source_type == "LGR"
