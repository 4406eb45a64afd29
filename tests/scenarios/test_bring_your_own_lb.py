"""LB vendors and support engineers bring their own LB as data: no harness code changes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from harness import drivers, topology
from harness.customer import driver_from_config
from harness.deployment import Deployment, Succession
from harness.errors import NodeStartError
from harness.outcomes import Observation, Outcome
from harness.verdicts import classify_stream, classify_xff
from harness.protocol.headers import get

#: Each test brings up its own deployment, as a vendor's or support engineer's code would; one after
#: another on one worker, each takes over the CF side the one before leaves (``Succession``).
pytestmark = [pytest.mark.scenario, pytest.mark.waits(15), pytest.mark.xdist_group("bring-your-own-lb")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def succession() -> Iterator[Succession]:
    chain = Succession()
    yield chain
    chain.close()


def _stream(dep: Deployment) -> Observation:
    run = dep.stream_logs("dev", 200)
    if run.wait_event("connected", 15):
        dep.emit(200)
    return classify_stream(dep.evidence(run, run.result(60)), 200)


def test_vendor_driver_from_a_temporary_folder_runs_a_cell(tmp_path: Path, succession: Succession) -> None:
    shutil.copy(ROOT / "topologies/drivers/haproxy.cfg.j2", tmp_path / "acme.cfg.j2")
    (tmp_path / "acme.yaml").write_text(
        "name: acme-lb\ndescription: a vendor LB, here HAProxy under another name\nimage: haproxy\n"
        "template: acme.cfg.j2\nprotocols: [http, tcp]\npasses_upgrade: true\nproxy_protocol: [v1, v2]\n")
    registry = drivers.load_all(tmp_path)
    topo = topology.load_all()["tcp-same-port"].with_driver("acme-lb")
    assert registry["acme-lb"].supports(topo) is None
    dep = succession.enter(Deployment(topo, registry))
    assert _stream(dep).outcome is Outcome.PASS


def test_customer_nginx_conf_without_upgrade_headers_reproduces_the_bug(tmp_path: Path,
                                                                      succession: Succession) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text("""events {}
http {
  upstream cf { server 10.0.16.4; server 10.0.16.5; }
  server {
    listen 80;
    location / { proxy_pass http://cf; proxy_set_header Host $host; }
  }
  server {
    listen 443 ssl;
    ssl_certificate /etc/nginx/lb.pem;
    ssl_certificate_key /etc/nginx/lb.pem;
    location / { proxy_pass http://cf; proxy_set_header Host $host; }
  }
}
""")
    (tmp_path / "driver").mkdir()
    registry = {**drivers.load_all(), "customer": driver_from_config(conf, tmp_path / "driver")}
    topo = topology.load_all()["http-upgrade"].with_driver("customer")
    dep = succession.enter(Deployment(topo, registry))
    assert _stream(dep).outcome is Outcome.UPGRADE_STRIPPED
    # The XFF check's live negative control: this config sets no X-Forwarded-For, so the router
    # appends the LB's address and the app never learns the client's.
    echo = dep.http_get("echo")
    xff = get([tuple(h) for h in echo["body"]["headers"]], "X-Forwarded-For")
    assert classify_xff(xff, dep.client_ip(), dep.lb_ips()).outcome is Outcome.LB_IP_AS_CLIENT


def test_external_lb_in_front_of_published_routers(tmp_path: Path, succession: Succession) -> None:
    """An LB the harness does not start (here nginx on the host's network, standing in for an
    appliance): routers are published on fixed host ports, clients reach the LB at its address."""
    from testcontainers.core.container import DockerContainer

    from harness import images, reaper, tls
    from harness.deployment import external_router_ports

    topo = topology.load_all()["http-upgrade"].with_driver("external")
    pem = tls.pki_for(topo.system_domain, topo.apps_domain).server_pem
    upstreams = "".join(f"server 127.0.0.1:{external_router_ports(i)[80]};" for i in range(topo.router_count))
    conf = f"""events {{}}
http {{
  upstream routers {{ {upstreams} }}
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 80; listen 443 ssl;
    ssl_certificate /etc/nginx/lb.pem; ssl_certificate_key /etc/nginx/lb.pem;
    location / {{
      proxy_pass http://routers; proxy_http_version 1.1;
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;
    }}
  }}
}}
"""
    appliance = (DockerContainer(images.ensure_images(["nginx"])["nginx"])
                 .with_env("LB_CONFIG", conf).with_env("LB_TLS_PEM", pem)
                 .with_kwargs(network_mode="host", labels=reaper.labels()))
    appliance.start()
    try:
        registry = {**drivers.load_all(), "external": drivers.Driver.external_lb("host-gateway")}
        dep = succession.enter(Deployment(topo, registry, results_dir=tmp_path))
        assert (tmp_path / "external-lb.json").exists()
        assert _stream(dep).outcome is Outcome.PASS
        echo = dep.http_get("echo")
        xff = [v for k, v in echo["body"]["headers"] if k == "X-Forwarded-For"][0]
        assert xff.split(",")[0].strip() == dep.client_ip()
    finally:
        appliance.stop()


# ---- a customer's config as it is: the cell comes from its listeners, failures name their line ----

CORPUS = ROOT / "tests/customer_configs"
RUNS = [e for e in __import__("yaml").safe_load((CORPUS / "corpus.yaml").read_text()) if "run" in e]


@pytest.mark.parametrize("entry", RUNS, ids=[e["file"] for e in RUNS])
def test_customer_config_runs_in_a_cell_built_from_its_listeners(entry: dict, tmp_path: Path,
                                                                 succession: Succession) -> None:
    """No topology file: the config's own ports. A failure must be the corpus's outcome and be
    traced to the corpus's line; the idle cut is measured with pings off (bounded at 25 s: more
    than the 17 s the judgement needs)."""
    from harness.customer import driver_for, load
    from harness.customer.cell import topology_for
    from harness.customer.diagnose import explain
    from harness.plugin import _CellDeployment
    from harness.verdicts import classify_idle_measured
    from tests.scenarios.test_idle_measured import PINGS_OFF, measured_idle_attempt

    config = load(CORPUS / entry["file"])
    topo = topology_for({"default": ("default", config)}, tmp_path).with_driver("customer")
    registry = {"customer": driver_for(config, tmp_path / "driver")}
    want = entry["run"]
    dep = succession.enter(_CellDeployment(topo, registry, tc=PINGS_OFF))
    seen = {"logs": _stream(dep)}
    if "idle_measured" in want:
        seen["idle_measured"] = classify_idle_measured(measured_idle_attempt(dep, bound=25), 25)
    for check, outcome in want.items():
        assert seen[check].outcome.value == outcome, (check, seen[check])
        if outcome != "pass":
            lines = [f.line() for f in explain(config, check, outcome, (topo.logger_port,))]
            wanted = [f["at"] for f in entry["findings"]]
            assert any(line.startswith(w) for line in lines for w in wanted), (lines, wanted)
    if want.get("idle_measured") == "idle_cut":
        cut = re.search(r"cuts idle WebSocket streams after ([0-9.]+) s", seen["idle_measured"].detail)
        # a 5 s timeout, measured from the TC's stream open (the LB's clock starts at its last read)
        assert cut and 4.0 <= float(cut.group(1)) <= 7.0, seen["idle_measured"]


def test_a_config_nginx_rejects_stops_the_cell_with_nginx_s_own_message(tmp_path: Path,
                                                                       succession: Succession) -> None:
    """The nginx image runs no ``nginx -t`` first (it listens: see images/nginx/entrypoint.sh); nginx
    itself still rejects a bad config at start, and the harness says so with nginx's words."""
    template = (ROOT / "topologies/drivers/nginx.conf.j2").read_text()
    (tmp_path / "broken.conf.j2").write_text(template.replace("events {", "no_such_directive on;\nevents {", 1))
    (tmp_path / "broken.yaml").write_text(
        "name: broken-nginx\ndescription: nginx with a directive it does not know\nimage: nginx\n"
        "template: broken.conf.j2\nprotocols: [http, tcp]\npasses_upgrade: true\nvars: {pass_upgrade: true}\n")
    registry = drivers.load_all(tmp_path)
    topo = topology.load_all()["http-upgrade"].with_driver("broken-nginx")
    with pytest.raises(NodeStartError, match=r"""(?s)node 'lb' exited after \d+ s, before .*\[emerg\].* unknown directive "no_such_directive\""""):
        succession.enter(Deployment(topo, registry))
