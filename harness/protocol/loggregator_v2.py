"""Today's log paths, sans I/O: loggregator v2 envelopes as JSON, Log Cache's read API, the cf CLI's
Log Cache walk, and the RLP gateway's server-sent events.

Shapes follow the real components:
- v2 envelopes are protojson of ``loggregator_v2.Envelope``: int64 fields as JSON strings, ``bytes``
  as base64, enum names (go-loggregator ``rpc/loggregator_v2/envelope.proto``).
- Log Cache ``GET /api/v1/read/<source-id>`` answers ``{"envelopes": {"batch": [...]}}`` with
  ``start_time``/``end_time`` (ns), ``limit`` (default 100, at most 1000), ``envelope_types`` and
  ``descending`` (cloudfoundry/log-cache-release ``src/internal/cache/...`` read handler; go-log-cache
  ``client.go`` builds these parameters).
- The cf CLI (>= 6.50) streams ``cf logs`` by first reading the newest envelope (``limit=1``,
  ``descending``), then walking forward from one second before it, dropping envelopes newer than
  ``now - 2 s`` and sleeping 250 ms on an empty batch (cloudfoundry/cli
  ``actor/sharedaction/logging.go``; cloudfoundry/go-log-cache ``walk.go``).
- The RLP gateway writes ``data: <EnvelopeBatch JSON>\\n\\n`` per batch and
  ``event: heartbeat\\ndata: <unix s>\\n\\n`` when idle (loggregator-release
  ``src/rlp-gateway/internal/web/read.go``); its query needs an envelope type
  (``selector_builder.go``).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from harness.protocol import envelope as dropsonde

#: Log Cache's read limits (log-cache-release: default 100 per read, 1000 at most).
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: The CLI's walk: start 1 s before the newest envelope, show nothing newer than now - 2 s, 250 ms
#: between empty reads, 1000 lines for ``cf logs --recent``.
WALK_START_OFFSET_NS = 1_000_000_000
WALK_DELAY_NS = 2_000_000_000
EMPTY_RETRY_S = 0.25
RECENT_LINES = 1000
ENVELOPE_TYPES = ("log", "counter", "gauge", "timer", "event")
_SEQ = re.compile(rb"^seq=(\d+)\b")


class QueryError(ValueError):
    """A read request Log Cache or the RLP gateway answers 400 (the message is theirs)."""


# ---- envelopes -------------------------------------------------------------------------------------


def from_dropsonde(data: bytes, *, camel: bool = False) -> dict[str, object] | None:
    """The v2 JSON envelope of one dropsonde LogMessage envelope (None for other types): what
    Loggregator's v1->v2 conversion makes of it (source_id = app id, instance_id = source instance,
    tag ``source_type``). Log Cache's gateway writes proto field names (``source_id``); the RLP
    gateway's ``protojson`` writes lowerCamelCase (``sourceId``): ``camel``."""
    env = dropsonde.decode(data)
    if not env.HasField("logMessage"):
        return None
    msg = env.logMessage
    return {
        "timestamp": str(msg.timestamp or env.timestamp),
        "sourceId" if camel else "source_id": msg.app_id,
        "instanceId" if camel else "instance_id": msg.source_instance,
        "tags": {"source_type": msg.source_type, "origin": env.origin},
        "log": {"payload": base64.b64encode(msg.message).decode(), "type": "ERR" if msg.message_type == 2 else "OUT"},
    }


def source_of(env: dict[str, object]) -> str:
    return str(env.get("source_id", env.get("sourceId", "")))


def timestamp_of(env: dict[str, object]) -> int:
    return int(str(env.get("timestamp", "0")))


@dataclass(frozen=True)
class V2Log:
    seq: int | None  # the emitter's sequence number, None for lines it did not write
    timestamp_ns: int
    payload: bytes


def as_log(env: dict[str, object]) -> V2Log | None:
    log = env.get("log")
    if not isinstance(log, dict):
        return None
    payload = base64.b64decode(str(log.get("payload", "")))
    match = _SEQ.match(payload)
    return V2Log(int(match.group(1)) if match else None, timestamp_of(env), payload)


def batch_of(body: object) -> list[dict[str, object]]:
    """Envelopes of a Log Cache read answer (``{"envelopes": {"batch": []}}``) or of one RLP
    gateway event (``{"batch": []}``); raises ValueError when it is neither."""
    if isinstance(body, dict) and isinstance(body.get("envelopes"), dict):
        body = body["envelopes"]
    if not isinstance(body, dict) or not isinstance(body.get("batch", []), list):
        raise ValueError(f"not an envelope batch: {str(body)[:120]}")
    return list(body.get("batch", []))


# ---- Log Cache's read API --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadQuery:
    start_ns: int = 0
    end_ns: int | None = None  # None: now
    limit: int = DEFAULT_LIMIT
    types: tuple[str, ...] = ()
    descending: bool = False

    @classmethod
    def parse(cls, query: str) -> "ReadQuery":
        q = parse_qs(query, keep_blank_values=True)

        def one(name: str) -> str | None:
            return q[name][-1] if name in q else None

        try:
            start = int(one("start_time") or 0)
            end = int(one("end_time")) if one("end_time") else None  # type: ignore[arg-type]
            limit = int(one("limit") or DEFAULT_LIMIT)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        if limit > MAX_LIMIT:
            raise QueryError(f"limit must be <= {MAX_LIMIT}")
        types = tuple(t.lower() for t in q.get("envelope_types", []))
        if bad := [t for t in types if t not in ENVELOPE_TYPES and t != "any"]:
            raise QueryError(f"unknown envelope type {bad[0]!r}")
        return cls(start, end, limit, types, (one("descending") or "").lower() == "true")

    def select(self, stored: list[dict[str, object]], now_ns: int) -> list[dict[str, object]]:
        """The envelopes of ``stored`` (oldest first) this query returns, in its order."""
        end = self.end_ns if self.end_ns is not None else now_ns
        wanted = [e for e in stored if self.start_ns <= timestamp_of(e) < end and self._type_ok(e)]
        return list(reversed(wanted))[: self.limit] if self.descending else wanted[: self.limit]

    def _type_ok(self, env: dict[str, object]) -> bool:
        return not self.types or "any" in self.types or any(t in env for t in self.types)

    def to_query(self) -> str:
        parts = [f"start_time={self.start_ns}"] if self.start_ns else []
        parts += [f"end_time={self.end_ns}"] if self.end_ns is not None else []
        parts += [f"envelope_types={t.upper()}" for t in self.types]
        parts += [f"limit={self.limit}"] + (["descending=true"] if self.descending else [])
        return "&".join(parts)


def read_response(envelopes: list[dict[str, object]]) -> dict[str, object]:
    return {"envelopes": {"batch": envelopes}}


@dataclass
class EnvelopeStore:
    """Log Cache's per-source store: oldest first, bounded (``max_per_source``, real default 100000),
    the oldest pruned when full."""

    max_per_source: int = 100_000
    sources: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    def add(self, env: dict[str, object]) -> None:
        items = self.sources.setdefault(source_of(env), [])
        items.append(env)
        if len(items) > self.max_per_source:
            del items[: len(items) - self.max_per_source]

    def read(self, source_id: str, query: ReadQuery, now_ns: int) -> list[dict[str, object]]:
        return query.select(self.sources.get(source_id, []), now_ns)


# ---- the cf CLI's walk -----------------------------------------------------------------------------


@dataclass
class CliWalk:
    """``cf logs`` on CLI >= 6.50, as a state machine: ``next_query()`` says what to read, ``take()``
    what a read answered and returns the envelopes the CLI shows. Phase ``latest`` reads the newest
    envelope; phase ``walk`` reads forward from ``start_ns``."""

    phase: str = "latest"
    start_ns: int = 0

    def next_query(self) -> ReadQuery:
        if self.phase == "latest":
            return ReadQuery(limit=1, descending=True)
        return ReadQuery(start_ns=self.start_ns, types=("log",))

    def take(self, batch: list[dict[str, object]], now_ns: int) -> list[dict[str, object]]:
        if self.phase == "latest":
            if batch:  # found the newest: walk from one second before it
                self.phase, self.start_ns = "walk", timestamp_of(batch[0]) - WALK_START_OFFSET_NS
            return []
        shown = [e for e in batch if timestamp_of(e) <= now_ns - WALK_DELAY_NS]
        if shown:
            self.start_ns = timestamp_of(shown[-1]) + 1
        return shown


# ---- server-sent events ----------------------------------------------------------------------------


def sse_event(data: str, event: str | None = None) -> bytes:
    return ((f"event: {event}\n" if event else "") + f"data: {data}\n\n").encode()


@dataclass(frozen=True)
class SseEvent:
    event: str  # "message" when the server named none
    data: str


@dataclass
class SseParser:
    """Incremental parser of a ``text/event-stream`` body (WHATWG HTML, server-sent events)."""

    _buffer: bytes = b""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        events = []
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            name, data = "message", []
            for line in block.decode(errors="replace").split("\n"):
                if line.startswith(":"):
                    continue
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if key == "event":
                    name = value
                elif key == "data":
                    data.append(value)
            if data:
                events.append(SseEvent(name, "\n".join(data)))
        return events


def rlp_selector_error(query: str) -> QueryError | None:
    """The RLP gateway's 400s: an empty query, or no envelope type asked for."""
    q = parse_qs(query, keep_blank_values=True)
    if not q:
        return QueryError("query cannot be empty")
    if not any(t in q for t in (*ENVELOPE_TYPES, "counter.name", "gauge.name")):
        return QueryError("query must provide at least one envelope type")
    return None
