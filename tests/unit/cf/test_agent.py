"""The node agent runs commands as ``docker exec`` would: output lines, exit codes, its env (no Docker)."""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from typing import Iterator

import pytest

from harness.agent import handles
from harness.cf.nodeget import TIMEOUT_S, NodeGet
from tests.unit.cf.conftest import http_server_in_a_thread

pytestmark = pytest.mark.unit


def messages(*requests: dict[str, object]) -> list[dict[str, object]]:
    """Send ``requests`` to a fresh agent and close its stdin; what it answered, in order."""
    body = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run([sys.executable, "-m", "harness.cf", "agent"], input=body, capture_output=True,
                          text=True, timeout=60, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def agent(*requests: dict[str, object]) -> dict[str, dict[str, object]]:
    """Per request id: its output lines and exit code."""
    runs: dict[str, dict[str, object]] = {}
    for message in messages(*requests):
        run = runs.setdefault(str(message["id"]), {"out": []})
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
    (["curl", "-sf", "-m", "45", "http://127.0.0.1:8099/emit?app=a"], True),  # curl's --max-time
    (["curl", "-sf", "-m", "soon", "http://x"], False),  # not a number: real curl says so
    (["curl", "-s", "http://x"], False),  # without -f curl's exit code means something else
    (["iptables", "-L"], False),  # other tools keep their own docker exec
])
def test_what_the_harness_sends_to_an_agent(cmd: list[str], ok: bool) -> None:
    assert handles(cmd) is ok


class _Endpoint(BaseHTTPRequestHandler):
    """A node's status endpoint: a JSON list over two lines on /records, 404 elsewhere."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/records?attempt=a1":
            self.send_response(404)
            self.end_headers()
            return
        body = b'[{"attempt": "a1",\n "ts": 1}]'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    yield from http_server_in_a_thread(_Endpoint)


def test_a_get_of_the_node_s_endpoint_answers_as_curl_sf_and_does_not_wait_for_a_running_command(endpoint: str) -> None:
    """The GET runs in the agent's loop (no fork): it ends, with curl's output and codes, while a
    command started before it is still running."""
    requests = ({"id": "slow", "argv": ["python3", "-c", "import time; time.sleep(2); print('slept')"]},
                {"id": "ok", "argv": ["curl", "-sf", f"{endpoint}/records?attempt=a1"]},
                {"id": "missing", "argv": ["curl", "-sf", f"{endpoint}/nothing"]},
                {"id": "bad", "argv": ["curl", "-sf", "https://127.0.0.1:1/"]},
                {"id": "refused", "argv": ["curl", "-sf", "http://127.0.0.1:1/"]})
    runs = agent(*requests)
    assert runs["ok"] == {"out": ['[{"attempt": "a1",', ' "ts": 1}]'], "exit": 0}
    assert runs["missing"] == {"out": [], "exit": 22}  # -f: an HTTP error prints nothing
    assert runs["bad"] == {"out": [], "exit": 3} and runs["refused"] == {"out": [], "exit": 7}
    ended = [m["id"] for m in messages(*requests) if "exit" in m]
    assert ended.index("ok") < ended.index("slow")


def test_a_get_nobody_answers_ends_at_its_timeout_as_nothing_answering() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the backlog does), never answers
    get = NodeGet(f"http://127.0.0.1:{silent.getsockname()[1]}/records", timeout=0.5)
    give_up = time.monotonic() + 5  # a GET that never times out fails below instead of hanging the run
    with selectors.DefaultSelector() as selector:
        selector.register(get.sock, selectors.EVENT_WRITE)
        while get.exit is None and time.monotonic() < give_up:
            for _, events in selector.select(0.1):
                get.on_ready(writable=bool(events & selectors.EVENT_WRITE))
                if get.exit is None:
                    selector.modify(get.sock, selectors.EVENT_WRITE if get.sending else selectors.EVENT_READ)
            get.expire(time.monotonic())
    assert get.exit == 7 and not get.body and not get.sending
    get.sock.close()
    silent.close()


def test_a_get_with_a_max_time_waits_that_long_not_the_default() -> None:
    """``-m SECONDS`` (a long emit, say) is the GET's timeout: a silent endpoint ends it then, exit 7."""
    silent = socket.create_server(("127.0.0.1", 0))
    began = time.monotonic()
    runs = agent({"id": "g", "argv": ["curl", "-sf", "-m", "1", f"http://127.0.0.1:{silent.getsockname()[1]}/"]})
    # the bound that tells ``-m 1`` from the default is the default itself, not a guess at the load
    assert runs["g"] == {"out": [], "exit": 7} and 0.9 < time.monotonic() - began < TIMEOUT_S
    silent.close()


# ---- reusable workers (harness.cf.workers) -------------------------------------------------------

PID = "import os; print(os.getpid())"


def test_commands_in_turn_run_in_one_worker_each_with_its_own_output_and_exit() -> None:
    """One after another (each request sent once the last ended): the same worker process."""
    out = run_in_turn([{"argv": ["python3", "-c", PID]},
                       {"argv": ["python3", "-c", "import sys; print('second'); sys.exit(3)"]},
                       {"argv": ["python3", "-c", PID]}])
    assert out[1] == {"out": ["second"], "exit": 3}
    assert out[0]["exit"] == out[2]["exit"] == 0 and out[0]["out"] == out[2]["out"]


def test_a_command_does_not_see_the_environment_the_last_one_was_given() -> None:
    show = "import os; print(os.environ.get('HARNESS_ATTEMPT', '-'), os.getpid())"
    out = run_in_turn([{"argv": ["python3", "-c", show], "env": {"HARNESS_ATTEMPT": "a1"}},
                       {"argv": ["python3", "-c", show]}])
    (first, pid1), (second, pid2) = (o["out"][0].split() for o in out)
    assert (first, second) == ("a1", "-") and pid1 == pid2


def test_a_worker_left_with_a_thread_running_is_not_given_another_command() -> None:
    spin = "import threading, time; threading.Thread(target=time.sleep, args=(3,), daemon=True).start(); " + PID
    out = run_in_turn([{"argv": ["python3", "-c", spin]}, {"argv": ["python3", "-c", PID]}])
    assert out[0]["out"] != out[1]["out"]


def test_a_command_that_ends_its_process_reports_its_code_and_the_next_gets_a_new_worker() -> None:
    out = run_in_turn([{"argv": ["python3", "-c", "import os; print('bye', flush=True); os._exit(4)"]},
                       {"argv": ["python3", "-c", PID]}])
    assert out[0] == {"out": ["bye"], "exit": 4} and out[1]["exit"] == 0


def test_commands_at_once_run_in_workers_of_their_own() -> None:
    slow = "import time; time.sleep(0.5); " + PID
    runs = agent({"id": "a", "argv": ["python3", "-c", slow]}, {"id": "b", "argv": ["python3", "-c", slow]})
    assert runs["a"]["exit"] == runs["b"]["exit"] == 0 and runs["a"]["out"] != runs["b"]["out"]


def run_in_turn(requests: list[dict[str, object]]) -> list[dict[str, object]]:
    """Send each request once the previous one's exit came back; their outputs and exit codes."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cf", "agent"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    results: list[dict[str, object]] = []
    try:
        for i, request in enumerate(requests):
            proc.stdin.write(json.dumps({"id": str(i), **request}) + "\n")
            proc.stdin.flush()
            lines: list[str] = []
            for line in proc.stdout:
                message = json.loads(line)
                if "exit" in message:
                    results.append({"out": lines, "exit": message["exit"]})
                    break
                lines.append(message["out"])
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0  # idle workers let go, the agent ends
    finally:
        proc.kill()
    return results


def test_a_worker_left_with_a_socket_open_is_not_given_another_command() -> None:
    """A connection a command never closed ends with its worker, as it ended with a fork."""
    leave = "import socket, sys; sys.kept = socket.socket(); " + PID  # still referenced: still open
    out = run_in_turn([{"argv": ["python3", "-c", leave]}, {"argv": ["python3", "-c", PID]}])
    assert out[0]["exit"] == out[1]["exit"] == 0 and out[0]["out"] != out[1]["out"]


def test_each_command_starts_with_go_s_default_keepalive_and_its_own_attempt() -> None:
    """What the client module keeps between commands of one worker is reset before each."""
    turn_off = ("from harness.cf import client; client.KEEPALIVE = client.TcpKeepalive(0, 0); "
                "client.ATTEMPT = 'old'; " + PID)
    show = "from harness.cf import client; import os; print(client.KEEPALIVE.idle, client.ATTEMPT or '-', os.getpid())"
    out = run_in_turn([{"argv": ["python3", "-c", turn_off], "env": {"HARNESS_ATTEMPT": "a1"}},
                       {"argv": ["python3", "-c", show]}])
    idle, attempt, pid = out[1]["out"][0].split()
    assert (float(idle), attempt) == (15.0, "-") and pid == out[0]["out"][0]


def test_a_script_too_long_for_one_message_runs_in_a_fork_of_its_own() -> None:
    long = PID + "  # " + "x" * (200 << 10)  # past REQUEST_MAX and a SOCK_SEQPACKET message
    out = run_in_turn([{"argv": ["python3", "-c", PID]}, {"argv": ["python3", "-c", long]},
                       {"argv": ["python3", "-c", PID]}])
    assert [o["exit"] for o in out] == [0, 0, 0]
    assert out[0]["out"] == out[2]["out"] != out[1]["out"]
