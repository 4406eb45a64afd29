"""LB drivers are data: a ``<name>.yaml`` file plus a config template, no harness code.

A driver says which image runs the LB, how its config is rendered (Jinja2, strict: an unknown
variable is an error) and what it can do (listener protocols, Upgrade pass-through, PROXY
protocol). Vendors add theirs with ``--driver-dir``; see README "Adding a load balancer".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from harness.errors import DriverError

if TYPE_CHECKING:
    from harness.topology import Topology

DRIVERS_DIR = Path(__file__).resolve().parent.parent / "topologies" / "drivers"
FIELDS = {"name", "description", "image", "template", "protocols", "passes_upgrade", "proxy_protocol",
          "vars", "config_env", "version_command", "command"}


@dataclass(frozen=True)
class Driver:
    name: str
    file: Path
    description: str
    image: str  # a folder under images/ (built here) or any image reference
    template: Path
    protocols: tuple[str, ...]
    passes_upgrade: bool
    proxy_protocol: tuple[str, ...]  # PROXY versions it can send: v1, v2
    vars: dict[str, Any] = field(default_factory=dict)
    config_env: str = "LB_CONFIG"
    version_command: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    external: bool = False  # the user's own LB: no container; ``address`` is where clients reach it
    address: str = ""

    @property
    def local_image(self) -> bool:
        return not self.external and ":" not in self.image and "/" not in self.image

    def supports(self, topo: "Topology") -> str | None:
        """Why this driver cannot run the topology's default LBs, or None when it can."""
        for key, wanted in topo.requires.items():
            if getattr(self, key) != wanted:
                return f"topology requires {key}={wanted}"
        for lb in topo.load_balancers:
            if lb.driver != "default":
                continue
            if missing := {lst.protocol for lst in lb.listeners} - set(self.protocols):
                return f"no {'/'.join(sorted(missing))} listeners"
            if lb.proxy_protocol != "none" and lb.proxy_protocol not in self.proxy_protocol:
                return f"cannot send PROXY {lb.proxy_protocol}"
        return None

    @classmethod
    def external_lb(cls, address: str) -> "Driver":
        """The user's own LB at ``address`` (an IP or name the containers can reach, or
        ``host-gateway`` for an LB on this host). Expectations are those of a capable LB."""
        return cls(name="external", file=Path("(command line)"), description=f"external LB at {address}",
                   image="", template=Path(), protocols=("http", "tcp"), passes_upgrade=True,
                   proxy_protocol=("v1", "v2"), external=True, address=address)

    def render(self, context: dict[str, Any]) -> str:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(self.template.parent),
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        try:
            return env.get_template(self.template.name).render(**context, vars=self.vars)
        except jinja2.TemplateError as exc:
            raise DriverError(str(self.template), getattr(exc, "name", None) or "(template)", str(exc),
                              "the template may use: lb, routers, vars") from None


def _fail(file: Path, fld: str, problem: str, fix: str) -> DriverError:
    return DriverError(str(file), fld, problem, fix)


def load(path: Path) -> Driver:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _fail(path, "(syntax)", f"invalid YAML: {exc}", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise _fail(path, "(top level)", "is not a mapping", "start with 'name: <driver>'")
    if unknown := set(data) - FIELDS:
        raise _fail(path, sorted(unknown)[0], "unknown field", f"allowed: {', '.join(sorted(FIELDS))}")
    for required in ("name", "image", "template", "protocols"):
        if required not in data:
            raise _fail(path, required, "missing", f"add '{required}:'")
    template = path.parent / str(data["template"])
    if not template.is_file():
        raise _fail(path, "template", f"{template} does not exist", "name a template file beside the driver")
    protocols = data["protocols"]
    if not isinstance(protocols, list) or not set(protocols) <= {"http", "tcp"} or not protocols:
        raise _fail(path, "protocols", f"{protocols!r}", "use a list drawn from: http, tcp")
    if not isinstance(data.get("passes_upgrade", False), bool):
        raise _fail(path, "passes_upgrade", f"is {data['passes_upgrade']!r}", "use true or false")
    proxy = data.get("proxy_protocol", [])
    if not isinstance(proxy, list) or not set(proxy) <= {"v1", "v2"}:
        raise _fail(path, "proxy_protocol", f"is {proxy!r}", "use a list drawn from: v1, v2 (or [])")
    return Driver(name=str(data["name"]), file=path, description=str(data.get("description", "")),
                  image=str(data["image"]), template=template, protocols=tuple(protocols),
                  passes_upgrade=bool(data.get("passes_upgrade", False)),
                  proxy_protocol=tuple(proxy), vars=dict(data.get("vars") or {}),
                  config_env=str(data.get("config_env", "LB_CONFIG")),
                  version_command=tuple(data.get("version_command") or ()), command=tuple(data.get("command") or ()))


def load_all(*extra_dirs: Path) -> dict[str, Driver]:
    drivers: dict[str, Driver] = {}
    for directory in (DRIVERS_DIR, *extra_dirs):
        for path in sorted(Path(directory).glob("*.yaml")):
            driver = load(path)
            drivers[driver.name] = driver  # a vendor's driver may replace a built-in one
    return drivers
