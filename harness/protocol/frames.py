"""Frame fidelity scripts: what each side of a frame scenario sends, derived from one seed, and how
what arrived is judged against it. Pure: both ends compute the same script from the attempt id, so
a judgement compares what was sent with what arrived, never a hard-coded answer.

The assertions are those of HAProxy's ``reg-tests/http-messaging/websocket.vtc``, nginx-tests'
``proxy_websocket.t`` (a big frame, interleaved frames, data pipelined behind the handshake) and
Autobahn|Testsuite's framing, fragmentation, ping/pong and close categories, applied to the CF path.
RFC 6455 section 5.4 lets an intermediary re-fragment a message, so a judgement compares reassembled
messages and control-frame payloads; the fragment layout is reported, not required.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

#: Diego's executor cuts app output at 61,440 bytes per LogMessage (cloudfoundry/executor
#: ``depot/log_streamer/stream_destination.go``, MAX_MESSAGE_SIZE): the largest log line TC relays.
MAX_LOG_LINE = 61_440
#: Where the Traffic Controller stand-in serves the TC-side scripts (``harness.cf.frames``).
PATH_PREFIX = "/harness/frames/"
#: Close codes a WebSocket peer on the CF path sends: 1000 (stream ended, slow consumer), 1008
#: (keepalive timeout, LR ``proxy/keepalive.go``), 1011 (server error).
CLOSE_CODES = (1000, 1008, 1011)
SCENARIOS = ("fragments", "pingpong", "pipelined", "casing", *(f"close-{code}" for code in CLOSE_CODES))
#: The client's last text message: "my side of the script is done; close as scripted".
DONE = "done"
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


#: byte -> its letter of ALPHABET (``bytes.translate``: the whole pattern in one C call)
_LETTERS = bytes(ALPHABET[b % len(ALPHABET)] for b in range(256))


def pattern(seed: str, size: int) -> bytes:
    """``size`` bytes that depend on ``seed`` and on every position: a dropped, repeated or shifted
    chunk changes them (a run of one letter would hide a shifted chunk). A chain of SHA-256 blocks
    mapped to letters; mapped by ``translate`` rather than byte by byte in Python, which was ~6x
    slower (6 ms for a 60 KB line) and ran in the TC, the client and the judge of every frame check."""
    blocks, block = [], hashlib.sha256(seed.encode()).digest()
    for _ in range(-(-size // len(block))):
        block = hashlib.sha256(block).digest()
        blocks.append(block)
    return b"".join(blocks)[:size].translate(_LETTERS)


def log_line(seq: int, size: int = MAX_LOG_LINE) -> bytes:
    """The LogMessage text of sequence number ``seq``, exactly ``size`` bytes, starting ``seq=<n> ``
    (what ``harness.protocol.envelope`` reads back)."""
    head = f"seq={seq} ".encode()
    return head + pattern(f"log-line-{seq}", size - len(head))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class Script:
    """What each side sends in one scenario, from the attempt id."""

    scenario: str
    seed: str

    # TC -> client: one binary message in three fragments with a ping after each of the first two
    # (sizes as nginx-tests interleave them: big, tiny, big).
    @property
    def server_fragments(self) -> tuple[bytes, ...]:
        return tuple(pattern(f"{self.seed}-s{i}", n) for i, n in enumerate((48 * 1024, 1, 20_000)))

    @property
    def server_pings(self) -> tuple[bytes, ...]:
        return tuple(f"tc-ping-{i}-{self.seed}".encode()[:125] for i in range(2))

    # client -> TC: one binary message in two fragments with a ping between them.
    @property
    def client_fragments(self) -> tuple[bytes, ...]:
        return tuple(pattern(f"{self.seed}-c{i}", n) for i, n in enumerate((30_000, 3)))

    @property
    def client_ping(self) -> bytes:
        return f"client-ping-{self.seed}".encode()[:125]

    @property
    def pipelined(self) -> bytes:
        """The binary message the client writes in the same write as its handshake request."""
        return pattern(f"{self.seed}-pipelined", 1000)

    @property
    def close(self) -> tuple[int, str]:
        """The close TC sends at the end: the scenario's code, else 1000; a reason with a non-ASCII
        character so a re-encoded reason shows (at most 123 bytes of UTF-8)."""
        code = int(self.scenario.removeprefix("close-")) if self.scenario.startswith("close-") else 1000
        return code, f"harness {code} {self.seed[:12]} \u2713"


# ---- judgements over one side's record ------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """One side's record judged against the script: ``fault`` is None when all arrived unchanged,
    else the kind of change (``message``, ``control``, ``close``, ``pipelined``) and a detail."""

    fault: str | None
    detail: str


def _layout(frames: list[dict[str, Any]]) -> str:
    return " ".join(f"{f['op']}{'' if f.get('fin', True) else '+'}:{f.get('len')}" for f in frames)


def judge(script: Script, client: dict[str, Any], tc: list[dict[str, Any]]) -> Judgement:
    """What crossed in both directions, from the client's record (``client``: frames it received,
    the pong to its ping, the close it got) and the Traffic Controller's events of the same attempt
    (``frames_*``: the message, the pong and the close TC received)."""
    got = {e["event"]: e for e in tc}
    frames = list(client.get("frames") or [])
    if script.scenario == "pipelined":
        seen = got.get("frames_received", {})
        if seen.get("first_message") != digest(script.pipelined):
            return Judgement("pipelined", f"TC's first message {seen.get('first_message')!r}, sent "
                                          f"{digest(script.pipelined)!r} behind the handshake")
    if script.scenario == "fragments":
        message = [f for f in frames if f["op"] in ("binary", "cont")]
        if client.get("message") != digest(b"".join(script.server_fragments)):
            return Judgement("message", f"TC->client message {client.get('message')} ({_layout(message)})")
        pings = [f.get("data") for f in frames if f["op"] == "ping"]
        if pings != [p.decode() for p in script.server_pings]:
            return Judgement("control", f"pings between the fragments: {pings}")
        seen = got.get("frames_received", {})
        if seen.get("first_message") != digest(b"".join(script.client_fragments)):
            return Judgement("message", f"client->TC message {seen.get('first_message')!r}")
    if script.scenario == "pingpong":
        pings = [f.get("data") for f in frames if f["op"] == "ping"]
        if pings != [script.server_pings[0].decode()]:
            return Judgement("control", f"TC's ping arrived as {pings}")
    if script.scenario in ("pingpong", "fragments"):
        if client.get("pong") != script.client_ping.decode():
            return Judgement("control", f"client's ping answered with {client.get('pong')!r}")
        pongs = got.get("frames_pongs", {}).get("answered")
        if pongs is not True:
            return Judgement("control", f"TC's pings answered: {pongs!r}")
    if script.scenario == "casing" and client.get("echo") != digest(script.pipelined):
        return Judgement("message", f"echo {client.get('echo')!r}")
    code, reason = script.close
    close = client.get("close") or {}
    if (close.get("code"), close.get("reason")) != (code, reason):
        return Judgement("close", f"TC sent {code} {reason!r}, client got {close.get('code')} {close.get('reason')!r}")
    echoed = got.get("frames_closed", {})
    if (echoed.get("code"), echoed.get("reason")) != (code, reason):
        return Judgement("close", f"client echoed {code}, TC got {echoed.get('code')} {echoed.get('reason')!r}")
    return Judgement(None, f"{_layout(frames)}; close {code}")
