"""Benchmarks (not tests): bring-up cost and the LB's effect on throughput and latency.

1. Bring-up of the http-upgrade/nginx cell through the harness (testcontainers, readiness checks)
   vs a raw ``docker run`` of the same containers on the same networks, waiting for the same
   "listening" lines.
2. Log throughput (envelopes/s) and delivery latency p50/p99 through nginx vs straight to the
   Traffic Controller, in one run, as ratios.

3. With ``BENCH_MATRIX=1``: the wall time of the whole qualification matrix (``ci/qualify``'s pytest
   run, images warm), against the goal of 4 minutes on 2 cores.

Run: ``.venv/bin/python ci/bench.py`` (after ``bash ci/setup``). Prints a table; writes
results/bench.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import drivers, images, reaper, tls, topology  # noqa: E402

reaper.configure_testcontainers()  # the harness's Ryuk-compatible reaper, as in a pytest run
from harness.deployment import APP_GUID, TOKENS, Deployment  # noqa: E402

N = int(os.environ.get("BENCH_ENVELOPES", "10000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PACED = float(os.environ.get("BENCH_PACED_RATE", "2000"))  # below the stand-ins' capacity: no drops


def harness_bringup() -> float:
    topo = topology.load_all()["http-upgrade"].with_driver("nginx")
    start = time.monotonic()
    with Deployment(topo, drivers.load_all()):
        return time.monotonic() - start


def raw_bringup() -> float:
    """The same nodes with the docker CLI: two networks, eight containers, wait for readiness."""
    tags = images.ensure_images(["cf", "nginx"])
    topo = topology.load_all()["http-upgrade"].with_driver("nginx")
    dep = Deployment(topo, drivers.load_all())
    label = ["--label", f"{reaper.LABEL}=1", "--label", f"{reaper.OWNER_LABEL}={reaper.owner_token()}"]
    uid = f"raw{os.getpid()}"
    cf, edge = f"{uid}-cf", f"{uid}-edge"
    routes = json.dumps({topo.fqdn("api"): "cc:9022", topo.fqdn("doppler"): "tc:8081", topo.fqdn("echo"): "app:8080"})
    nodes = [
        ("cc", ["cc"], {"CF_TOKENS": json.dumps({"tokens": TOKENS, "apps": [APP_GUID]})}),
        ("doppler", ["doppler"], {}), ("app", ["app"], {}),
        ("tc", ["tc"], {"TC_DOPPLER_URLS": "ws://doppler:8082"}),
        ("router-0", ["router"], {"ROUTER_ROUTES": routes}), ("router-1", ["router"], {"ROUTER_ROUTES": routes}),
    ]
    config = dep.drivers["nginx"].render({"lb": topo.load_balancers[0],
                                          "routers": [{"host": f"router-{i}", "port": 80, "status_port": 8080}
                                                      for i in range(2)]})
    start = time.monotonic()
    try:
        for net in (cf, edge):
            subprocess.run(["docker", "network", "create", *label, net], check=True, capture_output=True)
        for name, cmd, env in nodes:
            envs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
            subprocess.run(["docker", "run", "-d", "--init", *label, "--name", f"{uid}-{name}", "--network", cf,
                            "--network-alias", name, *envs, tags["cf"], *cmd], check=True, capture_output=True)
        pem = tls.pki_for(topo.system_domain, topo.apps_domain).server_pem
        subprocess.run(["docker", "run", "-d", *label, "--name", f"{uid}-lb", "--network", cf, "-e",
                        f"LB_CONFIG={config}", "-e", f"LB_TLS_PEM={pem}", tags["nginx"]], check=True, capture_output=True)
        subprocess.run(["docker", "network", "connect", "--alias", topo.fqdn("doppler"), edge, f"{uid}-lb"],
                       check=True, capture_output=True)
        deadline = time.monotonic() + 60
        for name, _, _ in nodes:
            while b'"event": "listening"' not in subprocess.run(["docker", "logs", f"{uid}-{name}"],
                                                                capture_output=True).stdout:
                _tick(deadline, name)
        while b"start worker process" not in subprocess.run(["docker", "logs", f"{uid}-lb"],
                                                            capture_output=True, text=False).stderr:
            _tick(deadline, "lb")
        return time.monotonic() - start
    finally:
        names = [f"{uid}-{n}" for n, _, _ in nodes] + [f"{uid}-lb"]
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
        subprocess.run(["docker", "network", "rm", cf, edge], capture_output=True)


def _tick(deadline: float, name: str) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(f"raw bring-up: {name} not ready within 60 s")
    time.sleep(0.05)


def stream(dep: Deployment, node: str, endpoint: str, rate: float = 0) -> dict[str, float]:
    """Emit N envelopes (``rate`` per s, 0: unthrottled); measure one consumer at ``node`` via ``endpoint``."""
    client = dep.nodes[node].docker
    from harness.deployment import ClientRun

    run = ClientRun(client.client.api, client.id, ["python3", "-m", "harness.cf", "logs", "--endpoint", endpoint,
                                                   "--app", APP_GUID, "--token", "bearer dev", "--expect", str(N),
                                                   "--timeout", "60", "--settle", "3"])
    assert run.wait_event("connected", 20), run.raw
    dep.emit(N, rate=rate)
    delivery = run.result(90)["delivery"]
    span = delivery["receive_span_s"] or float("nan")
    return {"envelopes_per_s": delivery["unique"] / span, "p50_ms": delivery["latency_ms_p50"],
            "p99_ms": delivery["latency_ms_p99"], "lost": delivery["lost"]}


def matrix_wall_s() -> float:
    """The qualification matrix as ``ci/qualify`` runs it (warm images), wall time in seconds."""
    files = [line.strip().rstrip("\\").strip() for line in Path("ci/qualify").read_text().splitlines()
             if "tests/scenarios/" in line]
    tests = [word for line in files for word in line.split() if word.startswith("tests/")]
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "-n", "auto", "-p", "no:cacheprovider", "-q", *tests],
                   check=False, capture_output=True)
    return time.monotonic() - start


def main() -> int:
    reaper.reap()
    matrix = matrix_wall_s() if os.environ.get("BENCH_MATRIX") else None
    images.ensure_images(["cf", "nginx"])
    harness_s = [harness_bringup() for _ in range(ROUNDS)]
    raw_s = [raw_bringup() for _ in range(ROUNDS)]
    topo = topology.load_all()["http-upgrade"].with_driver("nginx")
    via_lb, direct, paced_lb, paced_direct = [], [], [], []
    with Deployment(topo, drivers.load_all()) as dep:
        for _ in range(ROUNDS):
            via_lb.append(stream(dep, "client", f"ws://{topo.fqdn('doppler')}:80"))
            direct.append(stream(dep, "app", "ws://tc:8088"))
            paced_lb.append(stream(dep, "client", f"ws://{topo.fqdn('doppler')}:80", rate=PACED))
            paced_direct.append(stream(dep, "app", "ws://tc:8088", rate=PACED))

    def med(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    out = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "matrix_wall_s": {"measured": matrix, "goal": 240, "ratio_to_goal": matrix / 240 if matrix else None},
        "rounds": ROUNDS, "envelopes": N,
        "bringup_s": {"harness": med(harness_s), "raw_docker_run": med(raw_s), "ratio": med(harness_s) / med(raw_s)},
        "saturated_through_nginx": {k: med([r[k] for r in via_lb]) for k in via_lb[0]},
        "saturated_direct_to_tc": {k: med([r[k] for r in direct]) for k in direct[0]},
        f"paced_{PACED:g}_per_s_through_nginx": {k: med([r[k] for r in paced_lb]) for k in paced_lb[0]},
        f"paced_{PACED:g}_per_s_direct_to_tc": {k: med([r[k] for r in paced_direct]) for k in paced_direct[0]},
    }
    for mode in ("saturated", f"paced_{PACED:g}_per_s"):
        lb, tc = out[f"{mode}_through_nginx"], out[f"{mode}_direct_to_tc"]
        out[f"{mode}_ratios_nginx_over_direct"] = {k: lb[k] / tc[k] for k in ("envelopes_per_s", "p50_ms", "p99_ms")
                                                   if tc[k]}
    Path("results").mkdir(exist_ok=True)
    Path("results/bench.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
