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
