"""A customer's config, read with real parsers: listeners, idle cuts, findings with their lines,
router addresses rewritten on the parsed tree. The corpus (tests/customer_configs/corpus.yaml)
says, per config, the lines the report must name; the controls must have no finding."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from harness import customer, topology
from harness.customer.cell import topology_for
from harness.customer.diagnose import annotate, explain
from harness.errors import DriverError
from harness.outcomes import Outcome
from harness.verdicts import expected, expected_for_customer

CORPUS = Path(__file__).resolve().parents[1] / "customer_configs"
ENTRIES = yaml.safe_load((CORPUS / "corpus.yaml").read_text())
ROUTERS = [{"host": "router-0", "port": 80, "status_port": 8080}, {"host": "router-1", "port": 80, "status_port": 8080}]


def render(path: Path, tmp_path: Path) -> str:
    driver = customer.driver_from_config(path, tmp_path / "driver")
    lb = topology.load_all()["http-upgrade"].load_balancers[0]
    return driver.render({"lb": lb, "routers": ROUTERS})


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_corpus_config_reports_exactly_its_lines(entry: dict) -> None:
    config = customer.load(CORPUS / entry["file"])
    seen = {(f.outcome.value, str(w)) for f in config.findings for w in f.where}
    for want in entry["findings"]:
        assert any(o == want["outcome"] and w.startswith(want["at"]) for o, w in seen), (want, seen)
    if not entry["findings"]:
        assert config.findings == ()
    assert config.listeners, "every corpus config has listeners"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_corpus_config_renders_with_every_router_address_rewritten(entry: dict, tmp_path: Path) -> None:
    out = render(CORPUS / entry["file"], tmp_path)
    assert "10.0.16." not in out and "router-0" in out
    assert "@@ROUTER" not in out


def test_nginx_listeners_timeouts_and_tls_from_the_parsed_tree() -> None:
    config = customer.load(CORPUS / "nginx-read-timeout-5s.conf")
    assert [(x.port, x.protocol, x.tls, x.backend_ports, x.idle_timeout) for x in config.listeners] == [
        (80, "http", False, (80,), 5.0), (443, "http", True, (80,), 5.0)]
    assert str(config.listeners[0].idle_where[0]) == "nginx-read-timeout-5s.conf:29 proxy_read_timeout 5s"


def test_nginx_include_is_followed_and_its_lines_named_in_its_own_file(tmp_path: Path) -> None:
    config = customer.load(CORPUS / "nginx-backend-port-8080.conf")
    assert config.listeners[0].backend_ports == (8081,)
    assert any(str(w).startswith("upstreams.inc:2 server") for f in config.findings for w in f.where)
    assert str(CORPUS / "upstreams.inc") in config.files


def test_nginx_stream_is_tcp_mode_with_proxy_v1_and_loads_the_module(tmp_path: Path) -> None:
    config = customer.load(CORPUS / "nginx-stream-proxy-protocol.conf")
    assert {(x.port, x.protocol, x.proxy_protocol, x.idle_timeout) for x in config.listeners} == {
        (80, "tcp", "v1", 3600.0), (443, "tcp", "v1", 3600.0)}
    assert render(CORPUS / "nginx-stream-proxy-protocol.conf", tmp_path).startswith("load_module ")


def test_haproxy_defaults_inherit_and_units_default_to_ms(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("defaults\n  mode http\n  timeout client 8000\n  timeout server 9s\n"
                   "frontend f\n  bind :80\n  option forwardfor\n  default_backend b\n"
                   "backend b\n  server r 10.0.0.1:80\n")
    config = customer.load(cfg)
    assert config.listeners[0].idle_timeout == 8.0
    assert [str(w) for f in config.findings for w in f.where] == ["haproxy.cfg:3 timeout client 8000"]


def test_haproxy_timeout_tunnel_supersedes_client_and_server() -> None:
    config = customer.load(CORPUS / "haproxy-control.cfg")
    assert {x.idle_timeout for x in config.listeners} == {3600.0} and config.findings == ()


def test_haproxy_server_template_becomes_server_lines_with_default_server_options(tmp_path: Path) -> None:
    out = render(CORPUS / "haproxy-send-proxy-v2.cfg", tmp_path)
    assert "server router1 router-0:80" in out and "server router2 router-1:80" in out
    assert "default-server send-proxy-v2" in out


def test_certificates_and_users_are_adapted_and_named(tmp_path: Path) -> None:
    config = customer.load(CORPUS / "nginx-control.conf")
    out = render(CORPUS / "nginx-control.conf", tmp_path)
    assert "ssl_certificate /etc/nginx/lb.pem;" in out and "user nginx" not in out
    assert any("ssl_certificate /etc/ssl/certs/cf-lb.crt" in r for r in config.rewritten)
    out = render(CORPUS / "haproxy-control.cfg", tmp_path)
    assert "crt /etc/haproxy/lb.pem" in out


def test_what_cannot_be_rewritten_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "nginx.conf"
    cfg.write_text("events {}\nhttp { server { listen 80; location / { proxy_pass http://$backend; } } }\n")
    config = customer.load(cfg)
    assert config.not_rewritten and "nginx.conf:2 proxy_pass http://$backend" in config.not_rewritten[0]


def test_literal_braces_in_customer_config_survive(tmp_path: Path) -> None:
    cfg = tmp_path / "nginx.conf"
    cfg.write_text("events {}\nhttp { server { listen 80; location / { return 200 '{{ not jinja }}'; } } }\n")
    assert "{{ not jinja }}" in render(cfg, tmp_path)


def test_missing_customer_config_is_a_driver_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match=r"nginx.conf: field '\(file\)': cannot be read"):
        customer.driver_from_config(tmp_path / "nginx.conf", tmp_path)


def test_nginx_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "nginx.conf"
    cfg.write_text("events {}\nhttp {\n  server { listen 80 }\n")
    with pytest.raises(DriverError, match=r"nginx.conf:\d+"):
        customer.load(cfg)


def _cell(name: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    config = customer.load(CORPUS / name)
    return config, topology_for({"default": ("default", config)}, tmp_path)


def test_cell_is_built_from_the_config_not_from_a_topology_file(tmp_path: Path) -> None:
    _, topo = _cell("nginx-80-only.conf", tmp_path)
    assert [lst.port for lst in topo.load_balancers[0].listeners] == [80]
    assert (topo.logger_scheme, topo.logger_port) == ("ws", 80)
    _, topo = _cell("nginx-tls-443-only.conf", tmp_path)
    assert (topo.logger_scheme, topo.logger_port) == ("wss", 443)
    assert (tmp_path / "customer-topology.yaml").exists()


def test_missing_listener_is_not_applicable_naming_the_port(tmp_path: Path) -> None:
    config, topo = _cell("nginx-tls-443-only.conf", tmp_path)
    driver = customer.driver_for(config, tmp_path / "d")
    drivers = {"customer": driver}
    topo = topo.with_driver("customer")
    exp = expected_for_customer(topo, expected(topo, drivers))
    assert exp["xff"].outcome is Outcome.NOT_APPLICABLE and exp["xff"].because == "your config has no listener on 80"
    assert exp["logs"].outcome is Outcome.PASS


def test_a_dedicated_websocket_lb_serves_doppler(tmp_path: Path) -> None:
    main, ws = customer.load(CORPUS / "nginx-control.conf"), customer.load(CORPUS / "haproxy-tcp-passthrough.cfg")
    topo = topology_for({"default": ("default", main), "doppler": ("customer-doppler", ws)}, tmp_path)
    assert topo.dns["doppler"] == "ws-lb" and topo.dns["api"] == "lb"
    assert topo.lb("ws-lb").driver == "customer-doppler" and topo.lb("ws-lb").listeners[0].protocol == "tcp"


def test_failed_check_is_traced_to_its_line_and_an_unexplained_one_says_so(tmp_path: Path) -> None:
    config, topo = _cell("nginx-plain-proxy.conf", tmp_path)
    records = [{"topology": "customer", "check": "logs", "observed": "upgrade_stripped"},
               {"topology": "customer", "check": "xff", "observed": "xff_wrong"},
               {"topology": "customer", "check": "recent_logs", "observed": "pass"}]
    annotate(records, {"customer": config}, topo.with_driver("customer"))
    assert any(line.startswith("nginx-plain-proxy.conf:19 proxy_pass http://cf") for line in records[0]["at_fault"])
    assert records[1]["at_fault"][0].startswith("no line of nginx-plain-proxy.conf explains 'xff_wrong'")
    assert "at_fault" not in records[2]
    assert not explain(config, "logs", "idle_cut", (443,))


def test_idle_cut_finding_names_the_directive_and_the_keepalive(tmp_path: Path) -> None:
    config = customer.load(CORPUS / "haproxy-timeout-5s.cfg")
    [line] = {f.line() for f in explain(config, "idle_measured", "idle_cut", (443,))}
    assert line.startswith("haproxy-timeout-5s.cfg:11 timeout client 5s; haproxy-timeout-5s.cfg:12 timeout server 5s")
    assert "pings only every 15 s" in line and "fix: timeout tunnel 1h" in line


def test_no_idle_cut_is_infinite_in_the_cell(tmp_path: Path) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("frontend f\n  mode http\n  bind :80\n  option forwardfor\n  default_backend b\n"
                   "backend b\n  mode http\n  server r 10.0.0.1:80\n")
    config = customer.load(cfg)
    assert config.listeners[0].idle_timeout is None
    assert math.isinf(topology_for({"default": ("default", config)}, tmp_path).load_balancers[0].idle_timeout)
