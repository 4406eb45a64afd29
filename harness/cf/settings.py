"""Environment-driven settings for the stand-ins. Defaults are the real components' values."""

from __future__ import annotations

import json
import os
import sys
import time


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_json(name: str, default: object) -> object:
    raw = os.environ.get(name)
    return json.loads(raw) if raw else default


def log_event(component: str, event: str, **fields: object) -> None:
    """One JSON object per line on stdout: container logs a person (and the harness) can grep."""
    record = {"ts": round(time.time(), 3), "component": component, "event": event, **fields}
    print(json.dumps(record, default=str), file=sys.stdout, flush=True)
