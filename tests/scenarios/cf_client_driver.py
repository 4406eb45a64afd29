"""Runs ``cloudfoundry-client`` (PyPI) against a cell, in its own process: the library ships its own
dropsonde ``events.*`` protobufs, which cannot share a descriptor pool with the harness's.

``python -m tests.scenarios.cf_client_driver <logs|recent|rlp> --api URL --hosts JSON ...`` logs in
as ``--user``, does one thing and prints one JSON result. ``--hosts`` maps the topology's names to
the LBs' addresses (this process resolves them like ``/etc/hosts`` would); the CA comes from
``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` / ``WEBSOCKET_CLIENT_CA_BUNDLE``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sys
import time
from typing import Any

SEQ = re.compile(rb"^seq=(\d+)\b")


def _resolve(hosts: dict[str, str]) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(hosts.get(host, host), *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def _seq(env: Any) -> int | None:
    if not env.HasField("logMessage"):
        return None
    match = SEQ.match(env.logMessage.message)
    return int(match.group(1)) if match else None


def logs(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    from websocket import WebSocketBadStatusException

    seen: set[int] = set()
    latencies: list[float] = []
    try:
        for env in client.doppler.stream_logs(args.app):
            seq = _seq(env)
            if seq is not None and args.base <= seq < args.base + args.expect:
                seen.add(seq - args.base)
                latencies.append((time.time_ns() - env.logMessage.timestamp) / 1e6)
            if len(seen) == args.expect:
                break
    except WebSocketBadStatusException as exc:
        return {"status": exc.status_code, "error_kind": "handshake_status", "error": f"websocket: bad handshake ({exc})",
                "outcome": {"connected": False, "error_kind": "handshake_status", "handshake_status": exc.status_code},
                "seen": []}
    except Exception as exc:  # noqa: BLE001 (what the library raises is the observation)
        return {"error_kind": "handshake_failed", "error": repr(exc), "seen": sorted(seen),
                "outcome": {"connected": bool(seen), "error_kind": "handshake_failed"}}
    latencies.sort()
    return {"outcome": {"connected": True, "closed_by": "client"}, "seen": sorted(seen),
            "latency_ms_p50": latencies[len(latencies) // 2] if latencies else None}


def recent(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    try:
        seqs = [s for env in client.doppler.recent_logs(args.app) if (s := _seq(env)) is not None]
    except Exception as exc:  # noqa: BLE001
        return {"status": getattr(getattr(exc, "response", None), "status_code", None), "error": repr(exc), "seqs": []}
    return {"status": 200, "seqs": seqs}


def rlp(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        try:
            async with asyncio.timeout(args.timeout):
                async for chunk in client.rlpgateway.stream_logs(args.app):
                    return {"first": chunk.decode(errors="replace") if isinstance(chunk, bytes) else str(chunk)}
        except TimeoutError:
            return {"first": "", "error": "no event within the timeout"}
        except Exception as exc:  # noqa: BLE001
            return {"first": "", "error": repr(exc)}
        return {"first": ""}

    return asyncio.run(first())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="cf_client_driver")
    parser.add_argument("command", choices=("logs", "recent", "rlp"))
    parser.add_argument("--api", required=True)
    parser.add_argument("--hosts", required=True, help="JSON: host name -> address")
    parser.add_argument("--user", default="dev")
    parser.add_argument("--password", default="dev-password")
    parser.add_argument("--app", required=True)
    parser.add_argument("--base", type=int, default=0)
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=15)
    args = parser.parse_args(argv)
    _resolve(json.loads(args.hosts))
    from cloudfoundry_client.client import CloudFoundryClient

    try:
        client = CloudFoundryClient(args.api, verify=os.environ.get("REQUESTS_CA_BUNDLE", True))
        client.init_with_user_credentials(args.user, args.password)
    except Exception as exc:  # noqa: BLE001
        print(json.dumps({"login_error": repr(exc), "error_kind": "login"}), flush=True)
        return
    print(json.dumps({"event": "logged_in", "doppler": client.info.doppler_endpoint,
                      "log_stream": client.info.log_stream_endpoint}), flush=True)
    result = {"logs": logs, "recent": recent, "rlp": rlp}[args.command](client, args)
    print(json.dumps({"event": "result", **result}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
