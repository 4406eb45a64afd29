"""Topologies are data: ``topologies/*.yaml`` load into an inert, validated graph before anything starts.

Every error names the file, the field and what is allowed (``TopologyError``), so a support
engineer editing a customer's topology sees the fix, not a stack trace from Docker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from harness.errors import TopologyError, did_you_mean

TOPOLOGIES_DIR = Path(__file__).resolve().parent.parent / "topologies"
HOSTNAMES = ("api", "doppler", "uaa", "login", "echo",  # names clients resolve; echo lives on the apps domain
             "log-cache", "log-stream")  # today's log paths: Log Cache, the RLP gateway
PROTOCOLS = ("http", "tcp")
SCHEMES = ("ws", "wss")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
TOP_LEVEL = {"name", "strategy", "seed", "system_domain", "apps_domain", "routers", "logger_endpoint",
             "load_balancers", "dns", "expect", "description", "requires", "faults"}
#: Links a fault proxy (Toxiproxy API) can be put on; the option ``faults: [...]`` in a file.
FAULT_LINKS = ("client-lb", "lb-router", "router-tc", "doppler-tc")
REQUIREMENTS = ("passes_upgrade", "terminates_tls_tcp")
LB_FIELDS = ("name", "driver", "listeners", "proxy_protocol", "idle_timeout")
LISTENER_FIELDS = ("port", "protocol", "tls", "backend_port")


PROXY_VERSIONS = ("none", "v1", "v2")


@dataclass(frozen=True)
class Listener:
    port: int
    protocol: str  # "http" (the LB parses HTTP) or "tcp" (the LB passes bytes)
    tls: bool = False  # the LB terminates TLS on this listener
    backend_port: int = 80  # router port it forwards to (443: the routers' TLS listener)


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    driver: str  # driver name, or "default": the LB under test (pytest --lb)
    listeners: tuple[Listener, ...]
    proxy_protocol: str = "none"  # PROXY header sent to the routers on tcp listeners: none, v1, v2
    idle_timeout: float = 60.0


@dataclass(frozen=True)
class Topology:
    name: str
    file: str
    strategy: str
    seed: str
    system_domain: str
    apps_domain: str
    router_count: int
    router_proxy_protocol: bool
    logger_scheme: str
    logger_port: int
    load_balancers: tuple[LoadBalancer, ...]
    dns: dict[str, str]  # hostname label -> LB name
    expect: dict[str, str] = field(default_factory=dict)
    requires: dict[str, bool] = field(default_factory=dict)  # driver capabilities a cell needs
    faults: tuple[str, ...] = ()  # links routed through a fault proxy

    def lb(self, name: str) -> LoadBalancer:
        return next(lb for lb in self.load_balancers if lb.name == name)

    def fqdn(self, label: str) -> str:
        return f"{label}.{self.apps_domain if label == 'echo' else self.system_domain}"

    def with_faults(self, links: tuple[str, ...]) -> "Topology":
        return replace(self, faults=tuple(dict.fromkeys((*self.faults, *links))))

    def with_idle_timeout(self, seconds: float) -> "Topology":
        return replace(self, load_balancers=tuple(replace(lb, idle_timeout=seconds) for lb in self.load_balancers))

    def with_driver(self, driver: str) -> "Topology":
        """Bind every ``default`` LB to a concrete driver (one matrix cell)."""
        lbs = tuple(replace(lb, driver=driver) if lb.driver == "default" else lb for lb in self.load_balancers)
        return replace(self, load_balancers=lbs)


class _Reader:
    """Typed field access that turns every mistake into a TopologyError naming file and field."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, fld: str, problem: str, fix: str) -> TopologyError:
        return TopologyError(self.file, fld, problem, fix)

    def unknown(self, path: str, key: Any, allowed: Iterable[str]) -> TopologyError:
        names = list(allowed)
        return self.fail(f"{path}.{key}" if path else str(key), "unknown field",
                         f"{did_you_mean(str(key), names)}allowed: {', '.join(names)}")

    def get(self, data: dict[str, Any], key: str, path: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        fld = f"{path}.{key}" if path else key
        if key not in data:
            if default is ...:
                raise self.fail(fld, "missing", f"add '{key}:'")
            return default
        value = data[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(fld, f"is {type(value).__name__} {value!r}", f"use a {want}")
        return value

    def port(self, data: dict[str, Any], key: str, path: str, default: Any = ...) -> int:
        value = self.get(data, key, path, int, default)
        if not 1 <= value <= 65535:
            raise self.fail(f"{path}.{key}", f"port {value} out of range", "use 1-65535")
        return int(value)

    def choice(self, data: dict[str, Any], key: str, path: str, allowed: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(data, key, path, str, default)
        if value not in allowed:
            raise self.fail(f"{path}.{key}" if path else key, f"'{value}' is not allowed",
                            f"use one of: {', '.join(allowed)}")
        return str(value)


def _listeners(r: _Reader, raw: Any, path: str) -> tuple[Listener, ...]:
    if not isinstance(raw, list) or not raw:
        raise r.fail(path, "must be a non-empty list", "e.g. listeners: [{port: 80, protocol: http}]")
    out, ports = [], set()
    for i, item in enumerate(raw):
        p = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise r.fail(p, f"is {item!r}", "use a mapping like {port: 80, protocol: http}")
        if unknown := set(item) - set(LISTENER_FIELDS):
            raise r.unknown(p, sorted(unknown, key=str)[0], LISTENER_FIELDS)
        port = r.port(item, "port", p)
        if port in ports:
            raise r.fail(f"{p}.port", f"port {port} is listed twice", "give each listener its own port")
        ports.add(port)
        backend = r.port(item, "backend_port", p, 80)
        if backend not in (80, 443):
            raise r.fail(f"{p}.backend_port", f"routers listen on 80 and 443, not {backend}", "use 80 or 443")
        listener = Listener(port, r.choice(item, "protocol", p, PROTOCOLS), r.get(item, "tls", p, bool, False),
                            backend)
        _check_tls_not_wrapped_twice(r, listener, p)
        out.append(listener)
    return tuple(out)


def _check_tls_not_wrapped_twice(r: _Reader, listener: Listener, path: str) -> None:
    """A TCP listener that terminates TLS passes the decrypted bytes on; the routers' 443 listener
    expects a TLS handshake, so ``tcp`` + ``tls`` + ``backend_port: 443`` would wrap TLS twice."""
    if listener.protocol == "tcp" and listener.tls and listener.backend_port == 443:
        raise r.fail(f"{path}.backend_port", "a tcp listener with tls: true decrypts, then sends plain bytes to the "
                     "routers' TLS port 443 (TLS inside TLS)",
                     "use backend_port: 80 to terminate TLS at the LB, or drop tls: true to pass TLS through to 443")


def _load_balancers(r: _Reader, raw: Any) -> tuple[LoadBalancer, ...]:
    if not isinstance(raw, list) or not raw:
        raise r.fail("load_balancers", "must be a non-empty list", "declare at least one LB")
    lbs: list[LoadBalancer] = []
    for i, item in enumerate(raw):
        p = f"load_balancers[{i}]"
        if not isinstance(item, dict):
            raise r.fail(p, f"is {item!r}", "use a mapping with name, driver, listeners")
        if unknown := set(item) - set(LB_FIELDS):
            raise r.unknown(p, sorted(unknown, key=str)[0], LB_FIELDS)
        name = r.get(item, "name", p, str)
        if not NAME.match(name):
            raise r.fail(f"{p}.name", f"'{name}' is not a valid node name", "use lower-case letters, digits, '-'")
        if any(lb.name == name for lb in lbs):
            raise r.fail(f"{p}.name", f"'{name}' is used twice", "give each LB a unique name")
        idle = r.get(item, "idle_timeout", p, (int, float), 60.0)
        if idle <= 0:
            raise r.fail(f"{p}.idle_timeout", f"{idle} is not positive", "use seconds > 0")
        lbs.append(LoadBalancer(name, r.get(item, "driver", p, str, "default"), _listeners(r, item.get("listeners"),
                                f"{p}.listeners"), r.choice(item, "proxy_protocol", p, PROXY_VERSIONS, "none"),
                                float(idle)))
    return tuple(lbs)


def _dns(r: _Reader, raw: Any, lbs: tuple[LoadBalancer, ...]) -> dict[str, str]:
    names = [lb.name for lb in lbs]
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        raise r.fail("dns", f"is {raw!r}", "map hostnames to LB names, e.g. dns: {default: lb, doppler: ws-lb}")
    for key, value in raw.items():
        if key != "default" and key not in HOSTNAMES:
            raise r.fail(f"dns.{key}", "unknown hostname", f"use 'default' or one of: {', '.join(HOSTNAMES)}")
        if value not in names:
            raise r.fail(f"dns.{key}", f"LB '{value}' is not declared", f"use one of: {', '.join(names)}")
    default = raw.get("default", names[0])
    return {label: raw.get(label, default) for label in HOSTNAMES}


def parse(data: Any, file: str) -> Topology:
    r = _Reader(file)
    if not isinstance(data, dict):
        raise r.fail("(top level)", "is not a mapping", "start the file with 'name: <topology>'")
    unknown = set(data) - TOP_LEVEL
    if unknown:
        raise r.unknown("", sorted(unknown, key=str)[0], sorted(TOP_LEVEL))
    name = r.get(data, "name", "", str)
    if not NAME.match(name):
        raise r.fail("name", f"'{name}' is not a valid topology name", "use lower-case letters, digits, '-'")
    routers = r.get(data, "routers", "", dict, {})
    count = r.get(routers, "count", "routers", int, 2)
    if not 1 <= count <= 8:
        raise r.fail("routers.count", f"{count} routers", "use 1-8")
    logger = r.get(data, "logger_endpoint", "", dict)
    lbs = _load_balancers(r, data.get("load_balancers"))
    topo = Topology(
        name=name, file=file, strategy=r.get(data, "strategy", "", str), seed=r.get(data, "seed", "", str, ""),
        system_domain=r.get(data, "system_domain", "", str, "sys.example.com"),
        apps_domain=r.get(data, "apps_domain", "", str, "apps.example.com"),
        router_count=count, router_proxy_protocol=r.get(routers, "proxy_protocol", "routers", bool, False),
        logger_scheme=r.choice(logger, "scheme", "logger_endpoint", SCHEMES, "wss"),
        logger_port=r.port(logger, "port", "logger_endpoint"),
        load_balancers=lbs, dns=_dns(r, data.get("dns"), lbs),
        expect={str(k): str(v) for k, v in r.get(data, "expect", "", dict, {}).items()},
        requires=_requires(r, r.get(data, "requires", "", dict, {})),
        faults=_faults(r, r.get(data, "faults", "", list, [])),
    )
    _check_logger_port(r, topo)
    return topo


def _faults(r: _Reader, raw: list[Any]) -> tuple[str, ...]:
    for i, link in enumerate(raw):
        if link not in FAULT_LINKS:
            raise r.fail(f"faults[{i}]", f"unknown link {link!r}", f"use one of: {', '.join(FAULT_LINKS)}")
    return tuple(raw)


def _requires(r: _Reader, raw: dict[str, Any]) -> dict[str, bool]:
    for key in raw:
        if key not in REQUIREMENTS:
            raise r.fail(f"requires.{key}", "unknown capability", f"use one of: {', '.join(REQUIREMENTS)}")
    return {key: r.get(raw, key, "requires", bool) for key in raw}


def _check_logger_port(r: _Reader, topo: Topology) -> None:
    """The advertised port must exist on the LB that ``doppler`` resolves to, unless the file says
    the mismatch is the point (``expect: {logs: fail}``)."""
    lb = topo.lb(topo.dns["doppler"])
    if topo.logger_port not in {lst.port for lst in lb.listeners} and topo.expect.get("logs") != "fail":
        raise r.fail("logger_endpoint.port", f"{topo.logger_port} is not a listener of LB '{lb.name}' "
                     f"(which doppler.{topo.system_domain} resolves to)",
                     "advertise a port the LB listens on, or set expect.logs: fail to reproduce the mismatch")


def check_drivers(topo: Topology, known: Iterable[str]) -> None:
    """Every LB that names a driver (not ``default``) names one that exists: checked once the
    driver registry (built-in plus ``--driver-dir``) is known, before anything starts."""
    names = sorted(known)
    for i, lb in enumerate(topo.load_balancers):
        if lb.driver != "default" and lb.driver not in names:
            raise TopologyError(topo.file, f"load_balancers[{i}].driver", f"no LB driver '{lb.driver}'",
                                f"{did_you_mean(lb.driver, names)}use 'default' (the LB under test) or one of: "
                                f"{', '.join(names)}")


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: what is wrong and where."""
    def at(mark: Any) -> str:
        return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""

    problem = f"{getattr(exc, 'problem', None) or exc}{at(getattr(exc, 'problem_mark', None))}"
    if context := getattr(exc, "context", None):
        problem = f"{context}{at(getattr(exc, 'context_mark', None))}: {problem}"
    return " ".join(problem.split())


def load(path: Path | str) -> Topology:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TopologyError(str(path), "(syntax)", f"invalid YAML: {yaml_problem(exc)}",
                            "fix the YAML syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(str(path), "(file)", str(exc), "check the path") from None
    return parse(data, str(path))


def load_all(directory: Path | None = None) -> dict[str, Topology]:
    """Every ``*.yaml`` in ``directory`` (default: the repository's ``topologies/``), by name."""
    directory = TOPOLOGIES_DIR if directory is None else Path(directory)
    if not directory.is_dir():
        raise TopologyError(str(directory), "(folder)", "no such folder", "point at a folder of topology files")
    topologies: dict[str, Topology] = {}
    for path in sorted(directory.glob("*.yaml")):
        topo = load(path)
        if topo.name in topologies:
            raise TopologyError(str(path), "name", f"'{topo.name}' is also the name in {topologies[topo.name].file}",
                                "give each topology a unique name")
        topologies[topo.name] = topo
    return topologies
