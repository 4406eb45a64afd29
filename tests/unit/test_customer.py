"""A customer's config runs as it is: only router addresses in server lines change."""

from __future__ import annotations

from pathlib import Path

from harness import customer, topology

ROUTERS = [{"host": "router-0", "port": 80, "status_port": 8080}, {"host": "router-1", "port": 80, "status_port": 8080}]
NGINX = """events {}
http {
  upstream cf_routers {
    server 10.0.16.4:80 max_fails=3;
    server 10.0.16.5;
  }
  server { listen 80; server_name _; location / { proxy_pass http://cf_routers; } }
}
"""
HAPROXY = """defaults
  mode http
backend routers
  server r1 10.0.16.4:80 check
  server r2 10.0.16.5:80 check
"""


def test_nginx_upstream_servers_become_routers_and_nothing_else_changes(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(NGINX)
    driver = customer.driver_from_config(tmp_path / "nginx.conf", tmp_path)
    lb = topology.load_all()["http-upgrade"].load_balancers[0]
    out = driver.render({"lb": lb, "routers": ROUTERS})
    assert "server router-0:80 max_fails=3;" in out and "server router-1:80;" in out
    assert "server { listen 80; server_name _;" in out  # the virtual server line is not an upstream server
    assert driver.image == "nginx" and driver.name == "customer"


def test_haproxy_backend_servers_become_routers(tmp_path: Path) -> None:
    (tmp_path / "haproxy.cfg").write_text(HAPROXY)
    driver = customer.driver_from_config(tmp_path / "haproxy.cfg", tmp_path)
    lb = topology.load_all()["http-upgrade"].load_balancers[0]
    out = driver.render({"lb": lb, "routers": ROUTERS})
    assert "server r1 router-0:80 check" in out and "server r2 router-1:80 check" in out


def test_literal_braces_in_customer_config_survive(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(NGINX.replace("events {}", "events {} # {{ not jinja }}"))
    driver = customer.driver_from_config(tmp_path / "nginx.conf", tmp_path)
    lb = topology.load_all()["http-upgrade"].load_balancers[0]
    assert "{{ not jinja }}" in driver.render({"lb": lb, "routers": ROUTERS})


def test_missing_customer_config_is_a_driver_error_naming_the_file(tmp_path: Path) -> None:
    import pytest

    from harness.errors import DriverError

    with pytest.raises(DriverError, match=r"nginx.conf: field '\(file\)': cannot be read"):
        customer.driver_from_config(tmp_path / "nginx.conf", tmp_path)
