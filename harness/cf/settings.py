"""Environment-driven settings for the stand-ins. Defaults are the real components' values."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl


#: Doppler's WebSocket ingress in a cell (the emitter writes to it; TC, Log Cache and the RLP gateway
#: subscribe there unless a fault proxy stands in between).
DOPPLER_INGRESS = "ws://doppler:8082"
#: The app node's resident emitter's port, on its loopback (``harness.cf.apps.EmitEndpoint``).
EMIT_PORT = 8099


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


#: What the harness set on a running stand-in (``set_runtime``), kept in the container's own
#: filesystem so a restarted process (a test kills and starts a router) comes back with it.
RUNTIME_FILE = "/tmp/harness-runtime.json"
#: The harness path that sets them, on a stand-in's side or status port: ``?NAME=value&...``
RUNTIME_PATH = "/harness/env"


def _kept() -> dict[str, str]:
    try:
        with open(RUNTIME_FILE) as fh:
            return dict(json.load(fh))
    except FileNotFoundError:
        return {}


def load_runtime() -> None:
    """Put what the harness set before a restart back over the process's environment (at start,
    before the environment is read)."""
    os.environ.update(_kept())


def set_runtime(query: str, allowed: dict[str, str]) -> dict[str, str] | str:
    """Apply a ``RUNTIME_PATH`` query to the environment and keep it for a restart: the values
    set, or why not. ``allowed``: each name that may be set -> the pattern its value must match.
    Cells that differ only in such a setting share one node instead of starting another (a
    container start costs ~0.5 CPU-s of the engine's here)."""
    import re
    from urllib.parse import parse_qsl

    values = dict(parse_qsl(query, keep_blank_values=True))
    if not values:
        return f"nothing to set: name one or more of {', '.join(sorted(allowed))}"
    if unknown := sorted(set(values) - set(allowed)):
        return f"{', '.join(unknown)} cannot be set on the running node: only {', '.join(sorted(allowed))}"
    for name, value in values.items():
        if not re.fullmatch(allowed[name], value):
            return f"{name}={value!r}: must match {allowed[name]}"
    kept = {**_kept(), **values}
    with open(RUNTIME_FILE, "w") as fh:
        json.dump(kept, fh)
    os.environ.update(values)
    return values
