"""Delivery timelines for fault and failover checks: what the verdict keeps, and what the report draws.

A timeline is the attempt's own client record (``harness.cf.client`` result: ``timeline`` points from
``harness.protocol.timeline``, ``outcome.breaks`` with the re-dial's connect time, the ledger's
``lost_ranges``), all on one clock: seconds since that client run started. ``detail`` picks it out
of the client result for ``verdict(..., timeline=...)``; ``view`` turns a recorded detail into
chart geometry (gap bands with their length and count lost, break and re-dial markers) for the
``timeline`` macro in ``templates/report.html.j2``; ``line`` is its one-line text for report.md.
Formatting only; no I/O.
"""

from __future__ import annotations

import bisect
from typing import Any

#: A pause between two kept arrivals with nothing lost longer than this is drawn as a stall band.
STALL_S = 1.0
#: Bands drawn and labelled per chart (the largest, by envelopes lost then length).
MAX_BANDS = 6
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 420.0, 150.0, 44.0, 14.0, 24.0


def detail(client: dict[str, Any]) -> dict[str, Any] | None:
    """The timeline part of a client result, for a verdict's details; None if the client kept none."""
    points = client.get("timeline")
    if not points:
        return None
    delivery = client.get("delivery") or {}
    breaks = [{"at_s": b.get("at_s"), "redialled_at_s": b.get("redialled_at_s"), "close_code": b.get("close_code")}
              for b in (client.get("outcome") or {}).get("breaks") or []]
    return {"points": points, "breaks": breaks, "lost_ranges": delivery.get("lost_ranges") or [],
            "lost": delivery.get("lost"), "expected": delivery.get("expected")}


def details(client: dict[str, Any]) -> dict[str, Any]:
    """``verdict(..., **details(ev.client))``: ``{"timeline": ...}``, or nothing when no envelope came."""
    found = detail(client)
    return {"timeline": found} if found is not None else {}


def gaps(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """Each lost range placed in time: from the last arrival before it to the first one after it
    (``None`` end: nothing arrived after it), plus stalls longer than ``STALL_S`` that lost nothing.
    The timeline keeps the points on both sides of every jump, so these are arrival times, not guesses."""
    points = [(float(t), int(s)) for t, s in timeline.get("points") or []]
    if not points:
        return []
    by_seq = sorted(points, key=lambda p: p[1])
    seqs = [s for _, s in by_seq]
    out = []
    for lo, hi in timeline.get("lost_ranges") or []:
        i = bisect.bisect_left(seqs, int(lo))
        before = max((t for t, _ in by_seq[:i]), default=None)
        after = min((t for t, _ in by_seq[bisect.bisect_right(seqs, int(hi)):]), default=None)
        start = before if before is not None else 0.0
        out.append({"t0": start, "t1": after, "length_s": None if after is None else round(after - start, 3),
                    "lost": int(hi) - int(lo) + 1, "lo": int(lo), "hi": int(hi)})
    covered = [(g["t0"], g["t1"] if g["t1"] is not None else float("inf")) for g in out]
    for (t0, s0), (t1, _s1) in zip(points, points[1:]):
        if t1 - t0 > STALL_S and not any(a <= t0 and t1 <= b for a, b in covered):
            out.append({"t0": t0, "t1": t1, "length_s": round(t1 - t0, 3), "lost": 0, "lo": s0 + 1, "hi": s0})
    out.sort(key=lambda g: (-g["lost"], -(g["length_s"] or 0)))
    return sorted(out[:MAX_BANDS], key=lambda g: g["t0"])


def view(timeline: dict[str, Any], check: str, title: str) -> dict[str, Any]:
    """Chart geometry in SVG user units: x = seconds, y = sequence number (up)."""
    points = [(float(t), int(s)) for t, s in timeline.get("points") or []]
    breaks = timeline.get("breaks") or []
    bands = gaps(timeline)
    times = [t for t, _ in points] + [float(b[k]) for b in breaks for k in ("at_s", "redialled_at_s")
                                      if isinstance(b.get(k), (int, float))]
    t_max = max(times, default=1.0) or 1.0
    s_max = max([s for _, s in points] + [int(timeline.get("expected") or 0) - 1, 1])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + plot_w * t / t_max, 1)

    def y(s: float) -> float:
        return round(TOP + plot_h * (1 - s / s_max), 1)

    drawn = []
    for g in bands:
        left, w = x(g["t0"]), round(max(x(g["t1"] if g["t1"] is not None else t_max) - x(g["t0"]), 2), 1)
        beside = left + w + 3 + 6 * len(band_label(g)) < WIDTH - 8  # label right of the band, else left of it
        drawn.append({"x": left, "w": w, "label": band_label(g), "label_x": round(left + w + 3 if beside else left - 3, 1),
                      "anchor": "start" if beside else "end", **g})
    markers = []
    for b in breaks:
        if isinstance(b.get("at_s"), (int, float)):
            markers.append({"kind": "break", "x": x(float(b["at_s"])), "t": b["at_s"]})
        if isinstance(b.get("redialled_at_s"), (int, float)):
            markers.append({"kind": "redial", "x": x(float(b["redialled_at_s"])), "t": b["redialled_at_s"]})
    return {"check": check, "title": title, "width": WIDTH, "height": HEIGHT, "left": LEFT, "top": TOP,
            "bottom": HEIGHT - BOTTOM, "right": WIDTH - 8, "t_max": round(t_max, 1), "s_max": s_max,
            "dots": [(x(t), y(s)) for t, s in points], "bands": drawn, "markers": markers,
            "line": line(bands, breaks)}


def band_label(gap: dict[str, Any]) -> str:
    length = "open" if gap["length_s"] is None else f"{gap['length_s']:.1f} s"
    return f"{length}, {gap['lost']} lost" if gap["lost"] else f"{length} stall"


def line(bands: list[dict[str, Any]], breaks: list[dict[str, Any]]) -> str:
    """One sentence: "gap 2.1 s, 212 lost, re-dialled at 3.4 s" (every band, every re-dial)."""
    parts = [("gap " if g["lost"] else "stall ") + band_label(g).replace(" stall", "") for g in bands] or ["no gap"]
    redials = [f"{float(b['redialled_at_s']):.1f} s" for b in breaks if isinstance(b.get("redialled_at_s"), (int, float))]
    broken = [b for b in breaks if isinstance(b.get("at_s"), (int, float))]
    if redials:
        parts.append("re-dialled at " + ", ".join(redials))
    elif broken:
        parts.append(f"broke at {float(broken[0]['at_s']):.1f} s, no re-dial")
    return ", ".join(parts)
