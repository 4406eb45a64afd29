"""LB drivers are data: a ``<name>.yaml`` file plus a config template, no harness code.

A driver says which image runs the LB, how its config is rendered (Jinja2, strict: an unknown
variable is an error) and what it can do (listener protocols, Upgrade pass-through, PROXY
protocol). Vendors add theirs with ``--driver-dir``; see README "Adding a load balancer".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from harness.errors import DriverError, did_you_mean
from harness.topology import yaml_problem

if TYPE_CHECKING:
    from harness.topology import Topology

DRIVERS_DIR = Path(__file__).resolve().parent.parent / "topologies" / "drivers"
FIELDS = {"name", "description", "image", "template", "protocols", "passes_upgrade", "proxy_protocol",
          "vars", "config_env", "version_command", "command", "honours_idle_timeout", "default_idle_timeout",
          "default_topologies", "upgrade_failure", "terminates_tls_tcp", "max_tls_listeners"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # it becomes part of cell ids and container names
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: how a handshake can fail at an LB that does not pass Upgrade (``Outcome`` values; see verdicts)
UPGRADE_FAILURES = ("upgrade_stripped", "handshake_rejected", "handshake_failed")


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
    #: the template applies the topology's ``lb.idle_timeout`` (so the harness can set the idle cut)
    honours_idle_timeout: bool = False
    #: the LB's own idle cut of an upgraded stream, in seconds; None: it never cuts an idle stream
    default_idle_timeout: float | None = None
    #: when the run does not name this driver in ``--lb``, it joins only these topologies' matrix
    #: cells (and no other scenario); None: every cell it supports (keeps the default run small)
    default_topologies: tuple[str, ...] | None = None
    #: what a WebSocket handshake through an HTTP listener of a driver that cannot pass Upgrade
    #: shows (an ``Outcome`` value): how this LB's mistake fails, measured
    upgrade_failure: str = "upgrade_stripped"
    #: a TCP listener with ``tls: true`` cuts TLS and passes the plain bytes on (a TLS terminator)
    terminates_tls_tcp: bool = False
    #: how many listeners with ``tls: true`` one LB of this driver can serve (None: any number)
    max_tls_listeners: int | None = None
    #: A customer config's driver runs only in the topology derived from that config.
    customer_topology: str = ""

    @property
    def local_image(self) -> bool:
        return not self.external and ":" not in self.image and "/" not in self.image

    def supports(self, topo: "Topology") -> str | None:
        """Why this driver cannot run the topology's default LBs, or None when it can."""
        if self.customer_topology and topo.name != self.customer_topology:
            return f"a customer config runs only in the topology derived from it ({self.customer_topology})"
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
            if self.max_tls_listeners is not None and \
                    (tls := sum(lst.tls for lst in lb.listeners)) > self.max_tls_listeners:
                return f"LB '{lb.name}' has {tls} TLS listeners; this driver serves at most {self.max_tls_listeners}"
        return None

    @classmethod
    def external_lb(cls, address: str) -> "Driver":
        """The user's own LB at ``address`` (an IP or name the containers can reach, or
        ``host-gateway`` for an LB on this host). Expectations are those of a capable LB."""
        return cls(name="external", file=Path("(command line)"), description=f"external LB at {address}",
                   image="", template=Path(), protocols=("http", "tcp"), passes_upgrade=True,
                   proxy_protocol=("v1", "v2"), external=True, address=address)

    def render(self, context: dict[str, Any]) -> str:
        try:
            return _environment(self.template).get_template(self.template.name).render(**context, vars=self.vars)
        except jinja2.TemplateError as exc:
            raise DriverError(str(self.template), getattr(exc, "name", None) or "(template)", str(exc),
                              "the template may use: lb, routers, vars") from None


def _environment(template: Path) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(template.parent), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def _fail(file: Path, fld: str, problem: str, fix: str) -> DriverError:
    return DriverError(str(file), fld, problem, fix)


def _strings(path: Path, data: dict[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise _fail(path, key, f"is {value!r}", f"use a list of strings, e.g. {key}: [acme, --version]")
    return tuple(str(v) for v in value)


def load(path: Path) -> Driver:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _fail(path, "(syntax)", f"invalid YAML: {yaml_problem(exc)}", "fix the YAML syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, "(file)", str(exc), "check the path") from None
    if not isinstance(data, dict):
        raise _fail(path, "(top level)", "is not a mapping", "start with 'name: <driver>'")
    if unknown := set(data) - FIELDS:
        key = str(sorted(unknown, key=str)[0])
        raise _fail(path, key, "unknown field", f"{did_you_mean(key, FIELDS)}allowed: {', '.join(sorted(FIELDS))}")
    for required in ("name", "image", "template", "protocols"):
        if required not in data:
            raise _fail(path, required, "missing", f"add '{required}:'")
    name = data["name"]
    if not isinstance(name, str) or not NAME.match(name) or name == "default":
        raise _fail(path, "name", f"{name!r} is not a usable driver name",
                    "use letters, digits, '-', '_' or '.' ('default' means the LB under test in topologies)")
    for key in ("image", "template"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise _fail(path, key, f"is {data[key]!r}", f"give '{key}:' a non-empty string")
    template = path.parent / data["template"]
    if not template.is_file():
        raise _fail(path, "template", f"{template} does not exist", "name a template file beside the driver")
    try:
        _environment(template).get_template(template.name)  # syntax only: variables are checked at render
    except jinja2.TemplateSyntaxError as exc:
        raise _fail(template, f"line {exc.lineno}", f"template syntax error: {exc.message}",
                    "fix the Jinja2 syntax") from None
    except (jinja2.TemplateError, UnicodeDecodeError) as exc:
        raise _fail(template, "(file)", f"cannot be read as a template: {exc}",
                    "use a UTF-8 Jinja2 text file") from None
    if not isinstance(data.get("vars") or {}, dict):
        raise _fail(path, "vars", f"is {data['vars']!r}", "use a mapping, e.g. vars: {pass_upgrade: true}")
    config_env = data.get("config_env", "LB_CONFIG")
    if not isinstance(config_env, str) or not ENV_NAME.match(config_env):
        raise _fail(path, "config_env", f"is {config_env!r}", "use an environment variable name, e.g. LB_CONFIG")
    protocols = data["protocols"]
    if not isinstance(protocols, list) or not protocols or not all(p in ("http", "tcp") for p in protocols):
        raise _fail(path, "protocols", f"{protocols!r}", "use a list drawn from: http, tcp")
    if not isinstance(data.get("passes_upgrade", False), bool):
        raise _fail(path, "passes_upgrade", f"is {data['passes_upgrade']!r}", "use true or false")
    if not isinstance(data.get("terminates_tls_tcp", False), bool):
        raise _fail(path, "terminates_tls_tcp", f"is {data['terminates_tls_tcp']!r}", "use true or false")
    default_topologies = data.get("default_topologies")
    if default_topologies is not None:
        default_topologies = _strings(path, data, "default_topologies")
    max_tls = data.get("max_tls_listeners")
    if max_tls is not None and (isinstance(max_tls, bool) or not isinstance(max_tls, int) or max_tls < 1):
        raise _fail(path, "max_tls_listeners", f"is {max_tls!r}", "use a whole number >= 1, or leave it out (any number)")
    upgrade_failure = data.get("upgrade_failure", "upgrade_stripped")
    if upgrade_failure not in UPGRADE_FAILURES:
        raise _fail(path, "upgrade_failure", f"is {upgrade_failure!r}", f"use one of: {', '.join(UPGRADE_FAILURES)}")
    proxy = data.get("proxy_protocol", [])
    if not isinstance(proxy, list) or not all(p in ("v1", "v2") for p in proxy):
        raise _fail(path, "proxy_protocol", f"is {proxy!r}", "use a list drawn from: v1, v2 (or [])")
    honours, default_idle = _idle_fields(path, data)
    return Driver(name=name, file=path, description=str(data.get("description", "")),
                  image=data["image"], template=template, protocols=tuple(protocols),
                  passes_upgrade=bool(data.get("passes_upgrade", False)),
                  proxy_protocol=tuple(proxy), vars=dict(data.get("vars") or {}), config_env=config_env,
                  version_command=_strings(path, data, "version_command"), command=_strings(path, data, "command"),
                  honours_idle_timeout=honours, default_idle_timeout=default_idle,
                  default_topologies=default_topologies, upgrade_failure=str(upgrade_failure),
                  terminates_tls_tcp=bool(data.get("terminates_tls_tcp", False)), max_tls_listeners=max_tls)


def _idle_fields(path: Path, data: dict[str, Any]) -> tuple[bool, float | None]:
    """``honours_idle_timeout`` (bool, default false) and ``default_idle_timeout`` (seconds > 0, or
    null = no idle cut for upgraded streams, the default)."""
    honours = data.get("honours_idle_timeout", False)
    if not isinstance(honours, bool):
        raise _fail(path, "honours_idle_timeout", f"is {honours!r}",
                    "use true only if the template applies lb.idle_timeout, else false")
    default = data.get("default_idle_timeout")
    if default is not None and (isinstance(default, bool) or not isinstance(default, (int, float)) or default <= 0):
        raise _fail(path, "default_idle_timeout", f"is {default!r}",
                    "use seconds > 0, or null when the LB never cuts idle upgraded streams")
    return honours, None if default is None else float(default)


def load_all(*extra_dirs: Path) -> dict[str, Driver]:
    """The built-in drivers, then each extra folder's (a vendor's driver may replace a built-in one;
    two files of the extra folders naming the same driver are an error)."""
    drivers: dict[str, Driver] = {}
    for directory in dict.fromkeys(Path(d) for d in (DRIVERS_DIR, *extra_dirs)):  # a folder given twice: once
        if not directory.is_dir():
            raise _fail(directory, "(folder)", "no such folder", "name a folder holding <name>.yaml driver files")
        for path in sorted(directory.glob("*.yaml")):
            driver = load(path)
            if driver.name in drivers and drivers[driver.name].file.parent != DRIVERS_DIR:
                raise _fail(path, "name", f"'{driver.name}' is also the name in {drivers[driver.name].file}",
                            "give each driver a unique name")
            drivers[driver.name] = driver
    return drivers
