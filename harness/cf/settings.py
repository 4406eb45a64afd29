"""Environment-driven settings for the stand-ins. Defaults are the real components' values."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_json(name: str, default: object) -> object:
    raw = os.environ.get(name)
    return json.loads(raw) if raw else default


def log_event(component: str, event: str, **fields: object) -> None:
    """One JSON object per line on stdout: container logs a person (and the harness) can grep."""
    record = {"ts": round(time.time(), 3), "component": component, "event": event, **fields}
    print(json.dumps(record, default=str), file=sys.stdout, flush=True)


def server_tls_context(pem: str, path: str) -> "ssl.SSLContext":
    """A TLS server context from a PEM (key + chain) handed over in the environment; ``ssl`` loads
    chains from files only, so it is written to ``path`` first."""
    import ssl

    with open(path, "w") as fh:
        fh.write(pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(path)
    return context
