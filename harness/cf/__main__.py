"""Entry point of the CF image: ``python3 -m harness.cf <role> [args]``."""

from __future__ import annotations

import asyncio
import sys

ROLES = ("doppler", "tc", "cc", "router", "app", "emit", "logs", "firehose", "recent", "http", "mute", "crafted", "elb", "faultproxy", "capture", "idle", "crowd")
ROLES += ("logcache", "rlpgateway", "cf-logs", "cf-recent", "v2-nozzle")  # today's log paths (harness.profiles)
ROLES += ("frames", "tcppeer")  # frame fidelity, Scapy as the TCP peer
ROLES += ("agent",)  # the harness's resident command runner in a node (harness.agent)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ROLES:
        sys.exit(f"usage: python3 -m harness.cf {{{'|'.join(ROLES)}}} [args]")
    role, rest = argv[0], argv[1:]
    if role == "doppler":
        from harness.cf import doppler
        asyncio.run(doppler.main())
    elif role == "tc":
        from harness.cf import trafficcontroller
        asyncio.run(trafficcontroller.main())
    elif role == "cc":
        from harness.cf import cloudcontroller
        cloudcontroller.main()
    elif role == "router":
        from harness.cf import router
        asyncio.run(router.main())
    elif role == "app":
        from harness.cf import apps
        apps.serve_echo()
    elif role == "emit":
        from harness.cf import apps
        apps.emit_cli(rest)
    elif role == "capture":
        from harness.cf import capture
        capture.main(rest)
    elif role == "tcppeer":
        from harness.cf import tcppeer
        tcppeer.main(rest)
    elif role == "frames":
        from harness.cf import frames
        frames.main(rest)
    elif role == "faultproxy":
        from harness.cf import faultproxy
        asyncio.run(faultproxy.main())
    elif role == "elb":
        from harness.cf import elb
        asyncio.run(elb.main())
    elif role == "crowd":
        from harness.cf import crowd
        crowd.main(rest)
    elif role == "logcache":
        from harness.cf import logcache
        logcache.main()
    elif role == "rlpgateway":
        from harness.cf import rlpgateway
        rlpgateway.main()
    elif role in ("cf-logs", "cf-recent", "v2-nozzle"):
        from harness.cf import v2clients
        v2clients.main([role, *rest])
    elif role == "agent":
        from harness.cf import agent
        agent.main(rest)
    elif role == "idle":
        # The client container: stays up so tests can `docker exec` the client commands in it.
        import signal
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    else:
        from harness.cf import client
        client.main([role, *rest])


if __name__ == "__main__":
    main(sys.argv[1:])
