"""Run a customer's own nginx.conf or haproxy.cfg, as it is, and say which line breaks what.

The config is read with a real parser (``nginx.py``: crossplane; ``haproxy.py``: a section
parser), its listeners and idle timeouts become the cell (``cell.py``: no topology file has to match
it), router addresses are rewritten on the parsed tree, and each failed check is traced to the
directive at fault (``diagnose.py``). What the harness changed and what it could not rewrite is
listed in the report. ``--customer-config FILE`` (the LB every hostname resolves to) and
``--customer-config doppler=FILE`` (a dedicated WebSocket LB) may be combined.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml

from harness import drivers
from harness.customer.model import CustomerConfig
from harness.errors import DriverError

__all__ = ["CustomerConfig", "driver_from_config", "kind_of", "load"]


def kind_of(path: Path, text: str) -> str:
    if "haproxy" in path.name:
        return "haproxy"
    if "nginx" in path.name or re.search(r"^\s*(http|stream|events)\s*\{", text, re.M):
        return "nginx"
    if re.search(r"^\s*(frontend|backend|listen|defaults)\b", text, re.M):
        return "haproxy"
    raise DriverError(str(path), "(file)", "neither an nginx.conf nor a haproxy.cfg", "name the file nginx.conf or "
                      "haproxy.cfg")


def load(path: Path) -> CustomerConfig:
    """Parse a customer's config; a file that cannot be read or parsed is a DriverError naming it."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DriverError(str(path), "(file)", f"cannot be read: {exc.strerror if isinstance(exc, OSError) else exc}",
                          "name an nginx.conf or haproxy.cfg file that exists") from None
    if kind_of(path, text) == "nginx":
        from harness.customer import nginx

        return nginx.parse(path)
    from harness.customer import haproxy

    return haproxy.parse(path)


def driver_from_config(path: Path, workdir: Path | None = None, *, name: str = "customer") -> drivers.Driver:
    """The config as an LB driver named ``name`` whose template is the rewritten file."""
    return driver_for(load(path), workdir, name=name)


def driver_for(config: CustomerConfig, workdir: Path | None = None, *, name: str = "customer") -> drivers.Driver:
    folder = Path(workdir or tempfile.mkdtemp(prefix="harness-customer-"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.conf.j2").write_text(config.template)
    ws = config.listener(443) or (config.listeners[0] if config.listeners else None)
    # The customer wants everything to work: expectations are those of a fully capable LB, so every
    # check that fails shows up as a mismatch with its diagnosis. The harness cannot set a customer's
    # timeouts: the idle cut is measured (honours_idle_timeout false).
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({
        "name": name, "description": f"customer's {config.path.name} ({config.kind})", "image": config.kind,
        "template": f"{name}.conf.j2", "protocols": ["http", "tcp"], "passes_upgrade": True,
        "proxy_protocol": ["v1", "v2"], "version_command": [config.kind, "-v"], "honours_idle_timeout": False,
        "default_idle_timeout": ws.idle_timeout if ws else None}))
    return drivers.load(folder / f"{name}.yaml")
