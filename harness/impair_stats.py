"""What the kernel says an impairment did: pure parsers of iptables, tc and cgroup freezer output.

``harness.impair`` installs iptables rules tagged ``-m comment --comment harness-<id>``, tc qdiscs
and docker pauses, and reads them back before removing them; these functions turn that text into
figures a check can judge (packets a rule hit, bytes a qdisc sent, whether a cgroup was frozen).
No I/O here: ``tests/unit/test_impair.py`` feeds them output captured from real runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# ``[packets:bytes] -A CHAIN rule...`` as ``iptables-save -c`` prints every rule.
_SAVED_RULE = re.compile(r"^\[(?P<packets>\d+):(?P<bytes>\d+)\] -A (?P<chain>\S+) (?P<rule>.*)$")


@dataclass(frozen=True)
class RuleCounter:
    """One rule as ``iptables-save -c`` printed it, with the packets and bytes it matched."""

    table: str
    chain: str
    rule: str  # the rule after ``-A CHAIN`` in iptables-save's normal form
    packets: int
    bytes: int

    @property
    def acting(self) -> bool:
        """A rule with a target (DROP, REJECT) acts on what it matches; one without only counts."""
        return " -j " in f" {self.rule} "


def parse_iptables_save(text: str, tag: str) -> tuple[RuleCounter, ...]:
    """The rules carrying comment ``tag`` (all tables), in the order iptables-save lists them.

    ``tag`` must match the whole comment: ``harness-ab`` does not pick ``harness-abc``'s rules.
    """
    table, found = "", []
    marker = re.compile(rf"(^|\s)--comment \"?{re.escape(tag)}\"?(\s|$)")
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
            continue
        match = _SAVED_RULE.match(line)
        if match and marker.search(match["rule"]):
            found.append(RuleCounter(table, match["chain"], match["rule"], int(match["packets"]),
                                     int(match["bytes"])))
    return tuple(found)


@dataclass(frozen=True)
class QdiscStats:
    """A root qdisc's counters as ``tc -s -j qdisc show dev X`` reports them."""

    kind: str  # tbf, netem, ...
    bytes: int  # sent through the qdisc
    packets: int
    drops: int
    overlimits: int  # tbf: times a packet had to wait for tokens (the shaper engaged)
    backlog: int  # bytes still queued when read


def parse_tc_qdisc(text: str, kind: str) -> QdiscStats | None:
    """The root qdisc of ``kind`` in ``tc -s -j qdisc show`` output (other lines are ignored), or None."""
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("["):
            continue
        try:
            qdiscs = json.loads(line)
        except ValueError:
            continue
        for q in qdiscs:
            if q.get("kind") == kind and q.get("root"):
                return QdiscStats(kind, int(q.get("bytes", 0)), int(q.get("packets", 0)), int(q.get("drops", 0)),
                                  int(q.get("overlimits", 0)), int(q.get("backlog", 0)))
    return None


# ---- cgroup freezer ---------------------------------------------------------------------------------


def freezer_file(proc_cgroup: str) -> str | None:
    """Where the kernel keeps the freezer state of a process, from its ``/proc/<pid>/cgroup``.

    cgroup v1 (a ``freezer`` controller line): ``freezer/<path>/freezer.state``; cgroup v2 only
    (a single ``0::<path>`` line): ``<path>/cgroup.events``. Relative to the cgroup mount
    (``/sys/fs/cgroup``); None when neither is listed.
    """
    unified = None
    for line in proc_cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if "freezer" in controllers.split(","):
            return f"freezer{path.rstrip('/')}/freezer.state"
        if number == "0" and controllers == "":
            unified = f"{path.strip('/')}/cgroup.events".lstrip("/")
    return unified


def parse_freezer(file: str, text: str) -> bool | None:
    """Frozen or not, from ``freezer.state`` (``FROZEN``, ``FREEZING``, ``THAWED``) or
    ``cgroup.events`` (``frozen 1``); None when the text says neither."""
    if file.endswith("freezer.state"):
        state = text.strip()
        return {"FROZEN": True, "THAWED": False, "FREEZING": False}.get(state)
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "frozen":
            return value.strip() == "1"
    return None
