"""The measured idle cut: driver fields, which cells measure it, the prediction and the judgement
of recorded evidence (the TC's own open/close times for the attempt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import drivers, topology
from harness import verdicts as v
from harness.errors import DriverError
from harness.outcomes import Outcome
from harness.witness import Evidence

ACME = "name: acme\nimage: acme/lb:1\ntemplate: t.j2\nprotocols: [http, tcp]\npasses_upgrade: true\n"


def driver(tmp_path: Path, extra: str = "") -> drivers.Driver:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "t.j2").write_text("x")
    (tmp_path / "acme.yaml").write_text(ACME + extra)
    return drivers.load(tmp_path / "acme.yaml")


def test_idle_fields_default_to_not_honoured_and_no_cut(tmp_path: Path) -> None:
    d = driver(tmp_path)
    assert d.honours_idle_timeout is False and d.default_idle_timeout is None
    d = driver(tmp_path, "honours_idle_timeout: true\ndefault_idle_timeout: 60\n")
    assert d.honours_idle_timeout is True and d.default_idle_timeout == 60.0


@pytest.mark.parametrize("extra, field", [("honours_idle_timeout: yes please\n", "honours_idle_timeout"),
                                          ("default_idle_timeout: -1\n", "default_idle_timeout"),
                                          ("default_idle_timeout: soon\n", "default_idle_timeout")])
def test_bad_idle_fields_name_the_field(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(DriverError) as info:
        driver(tmp_path, extra)
    assert info.value.field == field


def test_builtin_drivers_honour_the_override_because_their_templates_apply_it() -> None:
    builtin = drivers.load_all()
    # caddy-read-timeout is the mistake driver whose cut is measured, not set (issue 13)
    assert {n for n, d in builtin.items() if not d.honours_idle_timeout} == {"caddy-read-timeout"}
    for name in ("nginx", "haproxy", "elb"):
        assert "lb.idle_timeout" in builtin[name].template.read_text()


def test_measured_cells_only_for_drivers_that_do_not_honour_lb_idle(tmp_path: Path) -> None:
    import pytest as _pytest

    from harness.customer.plugin import idle_measured_cells

    registry = {**drivers.load_all(), "acme": driver(tmp_path)}
    topos = topology.load_all()
    mark = _pytest.mark.idle_measured(tc={"TC_KEEPALIVE_INTERVAL": "100000"}).mark
    cells = idle_measured_cells(mark, topos, registry, sorted(registry))
    assert cells and {c.driver for c in cells} == {"acme", "caddy-read-timeout"}
    assert all(c.tc == (("TC_KEEPALIVE_INTERVAL", "100000"),) for c in cells)


def test_prediction_comes_from_the_drivers_declared_default(tmp_path: Path) -> None:
    topo = topology.load_all()["http-upgrade"].with_driver("acme")
    never = {"acme": driver(tmp_path / "a", "default_idle_timeout: null\n")}
    short = {"acme": driver(tmp_path / "b", "default_idle_timeout: 5\n")}
    assert v.expected(topo, never)["idle_measured"].outcome is Outcome.PASS
    assert v.expected(topo, short)["idle_measured"].outcome is Outcome.IDLE_CUT


def ev(closed_by: str | None, close_code: int | None, tc: tuple[dict[str, Any], ...]) -> Evidence:
    result = {"outcome": {"connected": True, "closed_by": closed_by, "close_code": close_code}}
    return Evidence("a1", 100.0, 130.0, result, (), tc, {})


OPEN = {"event": "stream_open", "ts": 100.5, "attempt": "a1"}


def lost_after(seconds: float) -> dict[str, Any]:
    return {"event": "stream_closed", "ts": 100.5 + seconds, "closed_by": "lost", "attempt": "a1"}


def test_a_5s_cut_is_an_idle_cut_with_the_measured_time() -> None:
    seen = v.classify_idle_measured(ev("server", 1006, (OPEN, lost_after(5.04))), 120)
    assert seen.outcome is Outcome.IDLE_CUT and "after 5.0 s" in seen.detail and "pings every 15 s" in seen.detail


def test_a_60s_cut_is_survived_by_the_keepalive_and_named_like_elb() -> None:
    seen = v.classify_idle_measured(ev("server", 1006, (OPEN, lost_after(60.2))), 120)
    assert seen.outcome is Outcome.PASS and "ELB-like 60 s default" in seen.detail


def test_no_cut_within_the_bound_is_a_pass_saying_the_bound() -> None:
    seen = v.classify_idle_measured(ev("client", 1000, (OPEN, {**lost_after(120), "closed_by": "client"})), 120)
    assert seen.outcome is Outcome.PASS and "no idle cut within 120 s" in seen.detail


def test_a_close_the_tc_made_itself_is_not_an_lb_cut() -> None:
    seen = v.classify_idle_measured(ev("server", 1008, (OPEN, {**lost_after(30), "closed_by": "tc"})), 120)
    assert seen.outcome is Outcome.CLOSED_UNEXPECTEDLY


def test_a_customer_config_is_expected_to_survive_whatever_its_own_timeout(tmp_path: Path) -> None:
    """The customer wants streams to work: a 5 s cut must be a mismatch naming the line, not a
    failure 'as predicted' from the config's own timeout."""
    from harness.customer import driver_for, load
    from harness.customer.cell import topology_for

    config = load(Path(__file__).resolve().parents[1] / "customer_configs/haproxy-timeout-5s.cfg")
    base = driver_for(config, tmp_path / "d")
    assert base.default_idle_timeout == 5.0
    customer = drivers.Driver(**{**base.__dict__, "customer_topology": "customer"})
    topo = topology_for({"default": ("default", config)}, tmp_path).with_driver("customer")
    assert v.expected(topo, {"customer": customer})["idle_measured"].outcome is Outcome.PASS


def test_haproxy_timeout_zero_is_not_a_cut(tmp_path: Path) -> None:
    from harness import customer

    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("defaults\n  mode http\n  timeout client 0\n  timeout server 0\n  timeout tunnel 0\n"
                   "frontend f\n  bind :80\n  option forwardfor\n  default_backend b\nbackend b\n  server r 10.0.0.1:80\n")
    config = customer.load(cfg)
    assert config.listeners[0].idle_timeout is None and config.findings == ()
