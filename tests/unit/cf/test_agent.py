"""The node agent runs commands as ``docker exec`` would: output lines, exit codes, its env (no Docker)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.agent import handles

pytestmark = pytest.mark.unit


def agent(*requests: dict[str, object]) -> dict[str, dict[str, object]]:
    """Send ``requests`` to a fresh agent, close its stdin; per request id: its lines and exit code."""
    body = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run([sys.executable, "-m", "harness.cf", "agent"], input=body, capture_output=True,
                          text=True, timeout=60, check=True)
    runs: dict[str, dict[str, object]] = {}
    for line in done.stdout.splitlines():
        message = json.loads(line)
        run = runs.setdefault(message["id"], {"out": []})
        if "exit" in message:
            run["exit"] = message["exit"]
        else:
            run["out"].append(message["out"])  # type: ignore[attr-defined]
    return runs


def test_commands_run_concurrently_each_with_its_own_lines_exit_code_and_attempt() -> None:
    runs = agent({"id": "a", "argv": ["python3", "-m", "harness.cf", "http", "http://127.0.0.1:1/"],
                  "env": {"HARNESS_ATTEMPT": "a1"}},
                 {"id": "b", "argv": ["python3", "-m", "harness.cf", "http", "http://127.0.0.1:1/"],
                  "env": {"HARNESS_ATTEMPT": "b2"}},
                 {"id": "c", "argv": ["python3", "-c", "import sys; print('x'); sys.exit(3)"]},
                 {"id": "d", "argv": ["echo", "plain", "exec"]})
    for run_id, attempt in (("a", "a1"), ("b", "b2")):  # the preloaded client takes each run's own id
        result = json.loads(runs[run_id]["out"][-1])  # type: ignore[index]
        assert runs[run_id]["exit"] == 0 and result["attempt"] == attempt and result["error_kind"] == "connect_refused"
    assert runs["c"] == {"out": ["x"], "exit": 3}
    assert runs["d"] == {"out": ["plain exec"], "exit": 0}


def test_curl_semantics_for_a_node_endpoint_nobody_serves() -> None:
    assert agent({"id": "g", "argv": ["curl", "-sf", "http://127.0.0.1:1/harness/events"]})["g"] == {"out": [], "exit": 7}


def test_a_crash_is_the_command_s_output_and_exit_1() -> None:
    run = agent({"id": "x", "argv": ["python3", "-c", "raise RuntimeError('boom')"]})["x"]
    assert run["exit"] == 1 and any("RuntimeError: boom" in line for line in run["out"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("cmd, ok", [
    (["python3", "-m", "harness.cf", "logs"], True),
    (["curl", "-sf", "http://127.0.0.1:8088/harness/events"], True),
    (["python3", "-c", "pass"], True),
    (["curl", "-s", "http://x"], False),  # without -f curl's exit code means something else
    (["iptables", "-L"], False),  # other tools keep their own docker exec
])
def test_what_the_harness_sends_to_an_agent(cmd: list[str], ok: bool) -> None:
    assert handles(cmd) is ok
