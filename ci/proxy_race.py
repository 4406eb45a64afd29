"""How late a starved LB writes its PROXY line, at Docker's default CPU weight and at the LB's.

gorouter reads a PROXY header for at most 100 ms (``harness.protocol.proxy_protocol``); an LB that
writes it later gets its client's TLS read as plain. A real LB is never starved by the CF side; here
it shares two cores with a dozen CF sides. This starts BUSY containers that each spin a core, then,
for each CPU weight, a CF-image container in which the ELB-like LB (TCP listener, PROXY v1) relays
CONNECTIONS connections to a backend that times accept -> first byte. Prints the percentiles.

Run: ``.venv/bin/python ci/proxy_race.py`` (after ``bash ci/setup``). Not a test: a measurement.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

BUSY = int(os.environ.get("RACE_BUSY", "40"))
CONNECTIONS = int(os.environ.get("RACE_CONNECTIONS", "200"))
WEIGHTS = (1024, 8192, 1024, 8192)  # Docker's default, then harness.deployment.LB_CPU_SHARES; twice
BACKEND, LISTENER = 18801, 18802


def inside() -> None:
    """In the CF image: backend, ELB-like LB, and a client opening connections through it."""
    gaps: list[float] = []
    srv = socket.create_server(("127.0.0.1", BACKEND), backlog=512)

    def one(conn: socket.socket, accepted: float) -> None:
        conn.recv(200)
        gaps.append((time.monotonic() - accepted) * 1000)
        conn.close()

    def serve() -> None:
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=one, args=(conn, time.monotonic()), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    config = {"backends": ["127.0.0.1"], "listeners": [
        {"port": LISTENER, "protocol": "tcp", "proxy_protocol": True, "backend_port": BACKEND}]}
    lb = subprocess.Popen([sys.executable, "-m", "harness.cf", "elb"], env=dict(os.environ, LB_CONFIG=json.dumps(config)),
                          stdout=subprocess.PIPE)
    assert lb.stdout and b"listening" in lb.stdout.readline()
    open_ = []
    for _ in range(CONNECTIONS):
        open_.append(socket.create_connection(("127.0.0.1", LISTENER)))
        time.sleep(0.01)
        if len(open_) > 50:
            open_.pop(0).close()
    time.sleep(2)
    lb.kill()
    gaps.sort()
    n = len(gaps)
    print(json.dumps({"n": n, "p50_ms": round(gaps[n // 2], 1), "p99_ms": round(gaps[int(n * 0.99)], 1),
                      "max_ms": round(gaps[-1], 1), "over_100_ms": sum(g > 100 for g in gaps)}))


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness import images

    image = images.ensure_images(["cf"])["cf"]
    source = Path(__file__).read_text()
    label = f"harness-race-{os.getpid()}"
    try:
        for i in range(BUSY):
            subprocess.run(["docker", "run", "-d", "--rm", "--label", label, "--network", "none", "--entrypoint",
                            "python3", image, "-c", "while True: pass"], check=True, stdout=subprocess.DEVNULL)
        for weight in WEIGHTS:
            out = subprocess.run(["docker", "run", "--rm", "--cpu-shares", str(weight), "--network", "none",
                                  "--entrypoint", "python3", image, "-c", source, "--inside"],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            print(f"cpu-shares {weight:5d} against {BUSY} busy containers: {out}", flush=True)
    finally:
        busy = subprocess.run(["docker", "ps", "-q", "--filter", f"label={label}"], capture_output=True, text=True)
        if ids := busy.stdout.split():
            subprocess.run(["docker", "rm", "-f", *ids], check=False, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    inside() if sys.argv[1:] == ["--inside"] else main()
