"""Run a customer's own nginx.conf or haproxy.cfg, as it is, in a topology's LB slot.

The only change made to the file: the address of every ``server`` line in an nginx ``upstream``
block or an HAProxy ``backend``/``listen`` section becomes ``router-<i>`` (i counting up, wrapping
over the topology's routers), keeping the port. TLS key pairs are expected at
``/etc/nginx/lb.pem`` / ``/etc/haproxy/lb.pem`` (the harness writes its own certificate there).
The result is an ordinary driver whose template is the rewritten file.
"""

from __future__ import annotations

import itertools
import re
import tempfile
from pathlib import Path

import yaml

from harness import drivers
from harness.errors import DriverError

NGINX_SERVER = re.compile(r"(\bserver\s+)([^\s:;]+)(:\d+)?([^;]*;)")
HAPROXY_SERVER = re.compile(r"^(\s*server\s+\S+\s+)([^\s:]+)(:\d+)?", re.M)
NGINX_BLOCK = re.compile(r"upstream\s+\S+\s*\{(.*?)\}", re.S)


def kind_of(path: Path, text: str) -> str:
    if "haproxy" in path.name:
        return "haproxy"
    if "nginx" in path.name or re.search(r"^\s*(http|stream|events)\s*\{", text, re.M):
        return "nginx"
    if re.search(r"^\s*(frontend|backend|listen)\s", text, re.M):
        return "haproxy"
    raise DriverError(str(path), "(file)", "neither an nginx.conf nor a haproxy.cfg", "name the file nginx.conf or "
                      "haproxy.cfg")


def rewrite(text: str, kind: str) -> str:
    """Replace router addresses with Jinja expressions over the topology's routers."""
    n = itertools.count()
    escaped = text.replace("{{", "{{ '{{' }}").replace("{%", "{{ '{%' }}").replace("{#", "{{ '{#' }}")

    def router(match: re.Match[str]) -> str:
        port = match.group(3) or ":80"
        return f"{match.group(1)}{{{{ routers[{next(n)} % routers|length].host }}}}{port}" + \
            (match.group(4) if kind == "nginx" else "")

    if kind == "haproxy":
        return HAPROXY_SERVER.sub(router, escaped)
    return NGINX_BLOCK.sub(lambda block: block.group(0).replace(block.group(1), NGINX_SERVER.sub(router, block.group(1))),
                           escaped)


def driver_from_config(path: Path, workdir: Path | None = None) -> drivers.Driver:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DriverError(str(path), "(file)", f"cannot be read: {exc.strerror if isinstance(exc, OSError) else exc}",
                          "name an nginx.conf or haproxy.cfg file that exists") from None
    kind = kind_of(path, text)
    folder = Path(workdir or tempfile.mkdtemp(prefix="harness-customer-"))
    (folder / "customer.conf.j2").write_text(rewrite(text, kind))
    # The customer wants everything to work: expectations are those of a fully capable LB, so
    # every check that fails shows up as a mismatch with its diagnosis.
    (folder / "customer.yaml").write_text(yaml.safe_dump({
        "name": "customer", "description": f"customer's {path.name} ({kind})", "image": kind,
        "template": "customer.conf.j2", "protocols": ["http", "tcp"], "passes_upgrade": True,
        "proxy_protocol": ["v1", "v2"], "version_command": [kind, "-v"]}))
    return drivers.load(folder / "customer.yaml")
