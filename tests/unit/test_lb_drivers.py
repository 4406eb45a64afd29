"""The issue-13 LBs are data: each driver pair renders the one difference that decides its verdict,
declares its idle timeout, and joins the default run only where its YAML says."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import drivers, topology, verdicts
from harness.errors import DriverError
from harness.outcomes import Outcome
from harness.plugin import LB_DEFAULTED, Cell, _in_default_run

ROUTERS = [{"host": "router-0", "port": 80, "status_port": 8080}, {"host": "router-1", "port": 80, "status_port": 8080}]
PAIRS = {  # good driver, mistake driver, the line only the good one renders
    "apache": ("apache-no-upgrade", "upgrade=websocket"),
    "lighttpd": ("lighttpd-no-upgrade", 'proxy.header = ("upgrade" => "enable")'),
    "varnish": ("varnish-no-pipe", "return (pipe);"),
    "trafficserver": ("trafficserver-no-ws-map", "regex_map wss://"),
}


def _render(name: str, topo: str = "http-upgrade") -> str:
    lb = topology.load_all()[topo].load_balancers[0]
    return drivers.load_all()[name].render({"lb": lb, "routers": ROUTERS})


@pytest.mark.parametrize("good", sorted(PAIRS))
def test_mistake_driver_lacks_exactly_the_upgrade_setting(good: str) -> None:
    mistake, line = PAIRS[good]
    assert line in _render(good) and line not in _render(mistake)


def test_every_shipped_driver_declares_its_idle_timeout() -> None:
    for path in sorted(drivers.DRIVERS_DIR.glob("*.yaml")):
        text = path.read_text()
        assert "honours_idle_timeout:" in text and "default_idle_timeout:" in text, path.name


def test_honoured_idle_timeout_reaches_the_rendered_config() -> None:
    lb = topology.load_all()["http-upgrade"].with_idle_timeout(7).load_balancers[0]
    wanted = {"apache": "ProxyTimeout 7", "lighttpd": "server.max-read-idle = 7", "varnish": "pipe_timeout=7",
              "trafficserver": "no_activity_timeout INT 7", "caddy": "read_timeout 7s", "hitch-haproxy": "tunnel 7s",
              "nginx": "proxy_read_timeout 7s", "haproxy": "tunnel 7s"}
    for name, driver in drivers.load_all().items():
        conf = driver.render({"lb": lb, "routers": ROUTERS})
        if name in wanted:
            assert driver.honours_idle_timeout and wanted[name] in conf, name
    assert "read_timeout 10s" in drivers.load_all()["caddy-read-timeout"].render({"lb": lb, "routers": ROUTERS})
    assert not drivers.load_all()["caddy-read-timeout"].honours_idle_timeout


def test_caddy_never_cuts_unless_told_and_the_mistake_cuts_before_tc_pings() -> None:
    loaded = drivers.load_all()
    assert loaded["caddy"].default_idle_timeout is None
    assert (loaded["caddy-read-timeout"].default_idle_timeout or 99) < 15  # TC pings about every 15 s


def test_hitch_hands_tls_to_haproxy_with_proxy_v1() -> None:
    conf = _render("hitch-haproxy", "tls-terminator-tcp")
    assert "write-proxy-v1 = on" in conf and 'frontend = "[*]:443"' in conf
    assert "bind 127.0.0.1:8443 accept-proxy" in conf and "send-proxy" in conf


def test_predictions_follow_the_driver_data() -> None:
    loaded, topos = drivers.load_all(), topology.load_all()
    ats = verdicts.expected(topos["http-only-elb"].with_driver("trafficserver-no-ws-map"), loaded)
    assert ats["logs"].outcome is Outcome.HANDSHAKE_REJECTED and ats["auth_404"].outcome is Outcome.HANDSHAKE_REJECTED
    varnish = verdicts.expected(topos["http-only-elb"].with_driver("varnish-no-pipe"), loaded)
    assert varnish["logs"].outcome is Outcome.UPGRADE_STRIPPED and varnish["auth_401"].outcome is Outcome.PASS
    terminated = verdicts.expected(topos["tls-terminator-tcp"].with_driver("hitch-haproxy"), loaded)
    assert terminated["xfp"].outcome is Outcome.XFP_WRONG and terminated["xff"].outcome is Outcome.PASS
    assert terminated["logs"].outcome is Outcome.PASS


@pytest.mark.parametrize("extra, field", [
    ("default_idle_timeout: soon\n", "default_idle_timeout"),
    ("default_idle_timeout: 0\n", "default_idle_timeout"),
    ("honours_idle_timeout: yes please\n", "honours_idle_timeout"),
    ("upgrade_failure: boom\n", "upgrade_failure"),
    ("terminates_tls_tcp: 1\n", "terminates_tls_tcp"),
    ("default_topologies: http-upgrade\n", "default_topologies"),
])
def test_bad_new_fields_name_the_field(tmp_path: Path, extra: str, field: str) -> None:
    (tmp_path / "t.j2").write_text("")
    (tmp_path / "a.yaml").write_text("name: a\nimage: x\ntemplate: t.j2\nprotocols: [http]\n" + extra)
    with pytest.raises(DriverError) as info:
        drivers.load(tmp_path / "a.yaml")
    assert info.value.field == field


def _metafunc(matrix: bool, defaulted: bool) -> SimpleNamespace:
    stash = {LB_DEFAULTED: True} if defaulted else {}
    marker = object() if matrix else None
    return SimpleNamespace(config=SimpleNamespace(stash=stash),
                           definition=SimpleNamespace(get_closest_marker=lambda name: marker))


def test_default_run_keeps_new_lbs_to_their_topologies_and_idle_variants_to_honouring_drivers() -> None:
    loaded = drivers.load_all()
    apache, caddy_rt, nginx = loaded["apache"], loaded["caddy-read-timeout"], loaded["nginx"]
    assert _in_default_run(_metafunc(True, True), apache, Cell("http-upgrade", "apache"))
    assert not _in_default_run(_metafunc(True, True), apache, Cell("http-upgrade-faults", "apache"))
    assert not _in_default_run(_metafunc(False, True), apache, Cell("http-upgrade", "apache"))  # only the matrix
    assert _in_default_run(_metafunc(False, False), apache, Cell("http-upgrade", "apache"))  # named in --lb
    assert _in_default_run(_metafunc(False, True), nginx, Cell("tcp-same-port", "nginx"))
    assert not _in_default_run(_metafunc(False, False), caddy_rt, Cell("http-upgrade", "caddy-read-timeout", lb_idle=4))
    assert _in_default_run(_metafunc(False, False), apache, Cell("http-upgrade", "apache", lb_idle=4))
