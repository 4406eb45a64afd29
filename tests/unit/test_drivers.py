"""LB drivers are data: shipped ones render, broken ones fail with file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import drivers, topology
from harness.errors import DriverError

ROUTERS = [{"host": "router-0", "port": 80, "status_port": 8080}, {"host": "router-1", "port": 80, "status_port": 8080}]


def test_nginx_renders_upgrade_pass_through() -> None:
    lb = topology.load_all()["http-upgrade"].load_balancers[0]
    conf = drivers.load_all()["nginx"].render({"lb": lb, "routers": ROUTERS})
    assert "proxy_http_version 1.1;" in conf and "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "server router-0:80;" in conf and "server router-1:80;" in conf


def test_nginx_no_upgrade_is_the_plain_proxy_pass() -> None:
    lb = topology.load_all()["http-upgrade"].load_balancers[0]
    conf = drivers.load_all()["nginx-no-upgrade"].render({"lb": lb, "routers": ROUTERS})
    assert "proxy_http_version" not in conf and "Upgrade" not in conf


def test_vendor_driver_from_a_folder_replaces_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("listen {{ lb.listeners[0].port }} {{ vars.x }}")
    (tmp_path / "acme.yaml").write_text("name: acme\nimage: acme/lb:1.0\ntemplate: t.j2\nprotocols: [tcp]\n"
                                        "vars: {x: 1}\n")
    loaded = drivers.load_all(tmp_path)
    assert {"nginx", "acme"} <= set(loaded)
    assert not loaded["acme"].local_image
    lb = topology.load_all()["http-upgrade"].load_balancers[0]
    assert loaded["acme"].render({"lb": lb, "routers": ROUTERS}) == "listen 80 1"


@pytest.mark.parametrize("body, field", [
    ("image: x\ntemplate: t.j2\nprotocols: [http]\n", "name"),
    ("name: a\nimage: x\ntemplate: missing.j2\nprotocols: [http]\n", "template"),
    ("name: a\nimage: x\ntemplate: t.j2\nprotocols: [udp]\n", "protocols"),
    ("name: a\nimage: x\ntemplate: t.j2\nprotocols: [http]\nflavour: 1\n", "flavour"),
    ("name: a\nimage: x\ntemplate: t.j2\nprotocols: [http]\npasses_upgrade: maybe\n", "passes_upgrade"),
    ("name: a\nimage: x\ntemplate: t.j2\nprotocols: [http]\nmax_tls_listeners: 0\n", "max_tls_listeners"),
])
def test_broken_driver_names_file_and_field(tmp_path: Path, body: str, field: str) -> None:
    (tmp_path / "t.j2").write_text("")
    (tmp_path / "bad.yaml").write_text(body)
    with pytest.raises(DriverError) as info:
        drivers.load(tmp_path / "bad.yaml")
    assert info.value.field == field and info.value.file.endswith("bad.yaml")


def test_template_using_an_unknown_variable_fails_with_the_name(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{{ nosuch }}")
    (tmp_path / "a.yaml").write_text("name: a\nimage: x\ntemplate: t.j2\nprotocols: [http]\n")
    with pytest.raises(DriverError, match="nosuch"):
        drivers.load(tmp_path / "a.yaml").render({"lb": None, "routers": []})


def driver_file(folder: Path, body: str, name: str = "acme.yaml") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "t.j2").write_text("listen {{ lb.listeners[0].port }}")
    (folder / name).write_text(body)
    return folder / name


ACME = "name: acme\nimage: acme/lb:1\ntemplate: t.j2\nprotocols: [tcp]\n"


@pytest.mark.parametrize("extra, field, fix", [
    ("command: nginx -g 'daemon off;'\n", "command", "list of strings"),
    ("version_command: {acme: 1}\n", "version_command", "list of strings"),
    ("vars: [1, 2]\n", "vars", "mapping"),
    ("config_env: 'LB CONFIG'\n", "config_env", "environment variable name"),
    ("passes_upgrades: true\n", "passes_upgrades", "did you mean 'passes_upgrade'?"),
])
def test_bad_field_types_name_the_field_and_fix(tmp_path: Path, extra: str, field: str, fix: str) -> None:
    with pytest.raises(DriverError) as info:
        drivers.load(driver_file(tmp_path, ACME + extra))
    assert info.value.field == field and fix in info.value.fix


@pytest.mark.parametrize("name", ["default", "two words", "''"])
def test_unusable_driver_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(DriverError, match="field 'name'"):
        drivers.load(driver_file(tmp_path, ACME.replace("name: acme", f"name: {name}")))


def test_template_syntax_error_fails_at_load_with_the_line(tmp_path: Path) -> None:
    path = driver_file(tmp_path, ACME)
    (tmp_path / "t.j2").write_text("ok\n{% if lb %}\nno endif\n")
    with pytest.raises(DriverError) as info:
        drivers.load(path)
    assert info.value.file.endswith("t.j2") and "template syntax error" in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match=r"field '\(syntax\)'.*line 1") as info:
        drivers.load(driver_file(tmp_path, "name: [acme\n"))
    assert "\n" not in str(info.value)


def test_missing_folder_and_duplicate_vendor_drivers(tmp_path: Path) -> None:
    with pytest.raises(DriverError, match="no such folder"):
        drivers.load_all(tmp_path / "nope")
    driver_file(tmp_path / "a", ACME)
    driver_file(tmp_path / "b", ACME)
    assert "acme" in drivers.load_all(tmp_path / "a", tmp_path / "a")  # the same folder twice is one folder
    with pytest.raises(DriverError, match="'acme' is also the name in"):
        drivers.load_all(tmp_path / "a", tmp_path / "b")
    driver_file(tmp_path / "c", ACME.replace("name: acme", "name: nginx"))
    assert drivers.load_all(tmp_path / "c")["nginx"].image == "acme/lb:1"  # a vendor may replace a built-in


def test_nginx_stream_terminates_tls_on_a_tcp_listener_with_tls() -> None:
    """An SSL:4443 -> router:80 listener: nginx's ``stream`` server must listen with ``ssl``."""
    lb = topology.load_all()["tcp-ssl-offload"].load_balancers[0]
    conf = drivers.load_all()["nginx"].render({"lb": lb, "routers": ROUTERS})
    stream = conf[conf.index("stream {"):]
    assert "listen 4443 ssl;" in stream and "ssl_certificate /etc/nginx/lb.pem;" in stream
    assert "server router-0:80;" in stream
    plain = drivers.load_all()["nginx"].render({"lb": topology.load_all()["tcp-same-port"].load_balancers[0],
                                                "routers": ROUTERS})
    assert "ssl" not in plain[plain.index("stream {"):]


def test_a_driver_with_one_tls_listener_refuses_a_topology_with_two() -> None:
    hitch, topologies = drivers.load_all()["hitch-haproxy"], topology.load_all()
    assert hitch.supports(topologies["tls-terminator-tcp"]) is None
    assert hitch.supports(topologies["tcp-ssl-offload"]) == \
        "LB 'lb' has 2 TLS listeners; this driver serves at most 1"
