"""Which fault proxy a deployment runs, and when it is ready: through the Toxiproxy API only.

The harness's own fault proxy (``harness.cf.faultproxy``, role ``faultproxy`` of the cf image) is
the default; ``HARNESS_TOXIPROXY_IMAGE=<image>`` runs another image that speaks the same API in
its place (e.g. ``ghcr.io/shopify/toxiproxy:2.12.0``). Nothing reads a fault proxy's logs: a node
is ready once ``GET /version`` answers 200 with a JSON version, as every Toxiproxy since 2.6 does.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

IMAGE_ENV = "HARNESS_TOXIPROXY_IMAGE"
API_PORT = 8474


@dataclass(frozen=True)
class FaultProxyImage:
    """The image and command that start a Toxiproxy-API server listening on all interfaces."""

    image: str
    command: tuple[str, ...]
    swapped: bool  # True: a user's image, not the harness's stand-in


def fault_proxy_image(cf_image: str) -> FaultProxyImage:
    """The user's image when ``HARNESS_TOXIPROXY_IMAGE`` is set (Toxiproxy's image has
    ``ENTRYPOINT ["/toxiproxy"]``; its server binds localhost unless told ``-host``), else the
    cf image's ``faultproxy`` role."""
    if image := os.environ.get(IMAGE_ENV, "").strip():
        return FaultProxyImage(image, ("-host=0.0.0.0", f"-port={API_PORT}"), True)
    return FaultProxyImage(cf_image, ("faultproxy",), False)


def version_ready(status: int, body: bytes) -> str | None:
    """The version a ``GET /version`` answer reports, or None when it is not a ready server's."""
    if status != 200:
        return None
    try:
        version = json.loads(body).get("version")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, str) and version else None


def wait_version(url: str, seconds: float) -> str | None:
    """Poll ``url``/version until it answers like a Toxiproxy server; its version, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/version", timeout=2) as resp:
                if version := version_ready(resp.status, resp.read()):
                    return version
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.1)
    return None
