"""The cell a customer's config runs in, built from the config's own listeners.

No topology file has to match the config port for port: the LB listens where the config says, and
Cloud Controller advertises the logging endpoint the config can serve (``wss://doppler...:443``
when it listens on 443, as CF does; else the port it has). A check that needs a listener the config
lacks is "not applicable", with the port named (``harness.verdicts.expected_for_customer``).
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from harness.customer.model import CustomerConfig, ParsedListener
from harness.topology import HOSTNAMES, Listener, LoadBalancer, Topology

TOPOLOGY = "customer"
#: ``--customer-config ROLE=FILE``: the LB name and hostnames each role serves.
ROLES = {"default": "lb", "doppler": "ws-lb"}


def _listener(lst: ParsedListener) -> Listener:
    return Listener(lst.port, lst.protocol, lst.tls, lst.backend_port)


def _lb(name: str, driver: str, config: CustomerConfig) -> LoadBalancer:
    proxies = {lst.proxy_protocol for lst in config.listeners if lst.protocol == "tcp"} - {"none"}
    ws = _logger_listener(config)
    idle = ws.idle_timeout if ws and ws.idle_timeout is not None else math.inf
    return LoadBalancer(name, driver, tuple(_listener(lst) for lst in config.listeners),
                        proxies.pop() if len(proxies) == 1 else "none", idle)


def _logger_listener(config: CustomerConfig) -> ParsedListener | None:
    return config.listener(443) or config.listener(80) or (config.listeners[0] if config.listeners else None)


def topology_for(configs: dict[str, tuple[str, CustomerConfig]], workdir: Path) -> Topology:
    """``configs``: role (default, doppler) -> (driver name, parsed config). The topology is written
    to ``workdir/customer-topology.yaml`` for the evidence."""
    lbs = tuple(_lb(ROLES[role], driver, config) for role, (driver, config) in configs.items())
    dns = {label: ROLES["default"] for label in HOSTNAMES}
    if "doppler" in configs:
        dns["doppler"] = ROLES["doppler"]
    ws_config = configs.get("doppler", configs["default"])[1]
    ws = _logger_listener(ws_config)
    port = ws.port if ws else 443
    scheme = "wss" if port == 443 or (ws and (ws.tls or (ws.protocol == "tcp" and ws.backend_port == 443))) else "ws"
    file = workdir / "customer-topology.yaml"
    topo = Topology(name=TOPOLOGY, file=str(file), strategy="a customer's own LB config",
                    seed="the customer's config, as it is", system_domain="sys.example.com",
                    apps_domain="apps.example.com", router_count=2, router_proxy_protocol=False,
                    logger_scheme=scheme, logger_port=port, load_balancers=lbs, dns=dns)
    workdir.mkdir(parents=True, exist_ok=True)
    file.write_text(yaml.safe_dump({
        "name": TOPOLOGY, "strategy": topo.strategy, "routers": {"count": 2, "proxy_protocol": False},
        "logger_endpoint": {"scheme": scheme, "port": port},
        "load_balancers": [{"name": lb.name, "driver": lb.driver, "proxy_protocol": lb.proxy_protocol,
                            "idle_timeout": lb.idle_timeout if math.isfinite(lb.idle_timeout) else None,
                            "listeners": [{"port": x.port, "protocol": x.protocol, "tls": x.tls,
                                           "backend_port": x.backend_port} for x in lb.listeners]} for lb in lbs],
        "dns": {"default": ROLES["default"], **({"doppler": ROLES["doppler"]} if "doppler" in configs else {})},
        "configs": {role: str(config.path) for role, (_, config) in configs.items()}}, sort_keys=False))
    return topo
