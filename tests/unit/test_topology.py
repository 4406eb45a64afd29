"""Bad topology files fail at load with the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import topology
from harness.errors import TopologyError

GOOD = {
    "name": "t", "strategy": "s", "logger_endpoint": {"scheme": "ws", "port": 80},
    "load_balancers": [{"name": "lb", "listeners": [{"port": 80, "protocol": "http"}]}],
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "topo.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_every_shipped_topology_loads() -> None:
    topologies = topology.load_all()
    assert "http-upgrade" in topologies
    for topo in topologies.values():
        assert topo.dns["doppler"] in {lb.name for lb in topo.load_balancers}


def test_minimal_topology_gets_defaults(tmp_path: Path) -> None:
    topo = topology.load(write(tmp_path, GOOD))
    assert topo.router_count == 2 and topo.dns["api"] == "lb" and topo.fqdn("echo") == "echo.apps.example.com"
    assert topo.with_driver("nginx").load_balancers[0].driver == "nginx"


def mutate(path: str, value: object) -> dict[str, object]:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is KeyError:
        del target[keys[-1]]
    else:
        target[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return data


@pytest.mark.parametrize("path, value, field, fix", [
    ("name", KeyError, "name", "add 'name:'"),
    ("name", "Bad Name", "name", "lower-case"),
    ("colour", "red", "colour", "allowed:"),
    ("logger_endpoint.port", 70000, "logger_endpoint.port", "1-65535"),
    ("logger_endpoint.port", "443", "logger_endpoint.port", "use a int"),
    ("logger_endpoint.port", 4443, "logger_endpoint.port", "expect.logs: fail"),
    ("logger_endpoint.scheme", "http", "logger_endpoint.scheme", "ws, wss"),
    ("load_balancers", [], "load_balancers", "at least one"),
    ("load_balancers.0.listeners.0.protocol", "udp", "load_balancers[0].listeners[0].protocol", "http, tcp"),
    ("load_balancers.0.listeners.0.tls", "yes", "load_balancers[0].listeners[0].tls", "bool"),
    ("load_balancers.0.idle_timeout", 0, "load_balancers[0].idle_timeout", "seconds > 0"),
    ("load_balancers.0.mode", "x", "load_balancers[0].mode", "allowed:"),
    ("dns", {"doppler": "nope"}, "dns.doppler", "use one of: lb"),
    ("dns", {"www": "lb"}, "dns.www", "api, doppler"),
    ("routers", {"count": 0}, "routers.count", "1-8"),
])
def test_errors_name_file_field_and_fix(tmp_path: Path, path: str, value: object, field: str, fix: str) -> None:
    file = write(tmp_path, mutate(path, value))
    with pytest.raises(TopologyError) as info:
        topology.load(file)
    err = info.value
    assert (err.file, err.field) == (str(file), field)
    assert fix in err.fix
    assert str(file) in str(err) and field in str(err)


def test_duplicate_listener_ports_and_lb_names(tmp_path: Path) -> None:
    dup = mutate("load_balancers.0.listeners", [{"port": 80, "protocol": "http"}, {"port": 80, "protocol": "tcp"}])
    with pytest.raises(TopologyError, match=r"listeners\[1\]\.port.*twice"):
        topology.load(write(tmp_path, dup))
    two = mutate("load_balancers", [GOOD["load_balancers"][0]] * 2)  # type: ignore[index]
    with pytest.raises(TopologyError, match=r"load_balancers\[1\]\.name.*used twice"):
        topology.load(write(tmp_path, two))


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"topo.yaml: field '\(syntax\)'"):
        topology.load(write(tmp_path, "name: [unclosed"))


def test_mismatch_is_allowed_when_it_is_the_point(tmp_path: Path) -> None:
    data = mutate("logger_endpoint.port", 4443)
    data["expect"] = {"logs": "fail"}
    assert topology.load(write(tmp_path, data)).logger_port == 4443


def test_errors_are_one_line_even_for_yaml_syntax(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as info:
        topology.load(write(tmp_path, "name: t\nload_balancers:\n  - name: [unclosed\n"))
    assert "\n" not in str(info.value) and "line 3" in str(info.value)


def test_unknown_field_suggests_the_closest_one(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as info:
        topology.load(write(tmp_path, {**GOOD, "load_balancer": []}))
    assert info.value.field == "load_balancer" and info.value.fix.startswith("did you mean 'load_balancers'?")
    data = mutate("load_balancers.0.idle_timout", 5)
    with pytest.raises(TopologyError, match=r"load_balancers\[0\]\.idle_timout.*did you mean 'idle_timeout'"):
        topology.load(write(tmp_path, data))


def test_an_lb_naming_an_unknown_driver_fails_once_drivers_are_known(tmp_path: Path) -> None:
    topo = topology.load(write(tmp_path, mutate("load_balancers.0.driver", "haproxi")))
    topology.check_drivers(topology.load(write(tmp_path, GOOD)), {"nginx"})  # 'default': the LB under test
    with pytest.raises(TopologyError) as info:
        topology.check_drivers(topo, {"nginx", "haproxy"})
    assert info.value.field == "load_balancers[0].driver" and "did you mean 'haproxy'?" in info.value.fix


def test_missing_topology_folder(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="no such folder"):
        topology.load_all(tmp_path / "nope")


def test_tcp_listener_terminating_tls_towards_the_routers_tls_port_is_refused(tmp_path: Path) -> None:
    """``tcp`` + ``tls`` + ``backend_port: 443`` would send decrypted bytes to a TLS port (TLS twice)."""
    data = mutate("load_balancers.0.listeners", [{"port": 80, "protocol": "http"},
                                                 {"port": 443, "protocol": "tcp", "tls": True, "backend_port": 443}])
    file = write(tmp_path, data)
    with pytest.raises(TopologyError) as info:
        topology.load(file)
    assert info.value.field == "load_balancers[0].listeners[1].backend_port"
    assert "backend_port: 80" in info.value.fix and "TLS inside TLS" in str(info.value)
    for fine in ({"port": 443, "protocol": "tcp", "tls": True}, {"port": 443, "protocol": "tcp", "backend_port": 443}):
        data = mutate("load_balancers.0.listeners", [{"port": 80, "protocol": "http"}, fine])
        assert topology.load(write(tmp_path, data)).load_balancers[0].listeners[1].port == 443
