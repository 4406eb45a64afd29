"""The harness's Ryuk: filter lines, ACKs, when it prunes and in which order, against a fake Docker
API and real loopback sockets (no Docker)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import docker.errors
import pytest

from harness.cf.ryuk import Lifetime, RyukServer, parse_duration, parse_filters, prune, removal_order


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10), ("1m30s", 90), ("500ms", 0.5), ("2", 2), ("1h", 3600)])
def test_durations_are_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ten", "10 s", "10sx"])
def test_a_bad_duration_says_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_filter_line_is_a_query_of_docker_filters() -> None:
    assert parse_filters("label=org.testcontainers.session-id=abc\r\n") == {
        "label": ["org.testcontainers.session-id=abc"]}
    assert parse_filters("label=a=1&label=b=2&name=x") == {"label": ["a=1", "b=2"], "name": ["x"]}
    assert parse_filters("  \r\n") is None
    with pytest.raises(ValueError):
        parse_filters("label=")


def test_no_prune_while_a_client_is_connected_then_after_the_reconnection_timeout() -> None:
    life = Lifetime(connection_timeout=60, reconnection_timeout=10, started=0)
    assert life.prune_at() == 60  # nobody ever connected
    life.connected()
    life.connected()
    assert life.prune_at() is None
    life.disconnected(5)
    assert life.prune_at() is None  # one client left
    life.disconnected(7)
    assert life.prune_at() == 17
    life.connected()  # a reconnect cancels the countdown
    assert life.prune_at() is None


def test_containers_in_another_namespace_go_first() -> None:
    ordered = removal_order([{"Id": "node", "HostConfig": {"NetworkMode": "net-1"}},
                             {"Id": "probe", "HostConfig": {"NetworkMode": "container:node"}},
                             {"Id": "bare"}])
    assert [c["Id"] for c in ordered] == ["probe", "node", "bare"]


class FakeApi:
    """Containers and networks by label; a network keeps endpoints for ``busy`` removal attempts."""

    def __init__(self, busy: int = 0) -> None:
        self.containers_: dict[str, dict[str, Any]] = {}
        self.networks_: dict[str, dict[str, Any]] = {}
        self.removed: list[str] = []
        self.busy = busy

    def add(self, kind: str, ident: str, labels: dict[str, str], mode: str = "default") -> None:
        if kind == "container":
            self.containers_[ident] = {"Id": ident, "Names": [f"/{ident}"], "Labels": labels,
                                       "HostConfig": {"NetworkMode": mode}}
        else:
            self.networks_[ident] = {"Id": ident, "Name": ident, "Labels": labels}

    @staticmethod
    def _match(item: dict[str, Any], filters: dict[str, list[str]]) -> bool:
        return all(item["Labels"].get(k) == v for k, v in (f.split("=", 1) for f in filters.get("label", [])))

    def containers(self, *, all: bool, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        return [c for c in self.containers_.values() if self._match(c, filters)]

    def networks(self, *, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        return [n for n in self.networks_.values() if self._match(n, filters)]

    def remove_container(self, container: str, *, v: bool, force: bool) -> None:
        assert force
        del self.containers_[container]
        self.removed.append(container)

    def remove_network(self, net_id: str) -> None:
        if self.busy:
            self.busy -= 1
            raise docker.errors.APIError("network has active endpoints")
        del self.networks_[net_id]
        self.removed.append(net_id)


def test_prune_removes_what_any_line_matches_and_nothing_else() -> None:
    api = FakeApi(busy=3)
    api.add("container", "node", {"s": "1"})
    api.add("container", "probe", {"s": "1"}, mode="container:node")
    api.add("container", "other-session", {"s": "2"})
    api.add("container", "marked", {"t": "x"})
    api.add("network", "net", {"s": "1"})
    sleeps: list[float] = []
    done = prune(api, [{"label": ["s=1"]}, {"label": ["t=x"]}], sleep=sleeps.append)
    assert api.removed == ["probe", "node", "marked", "net"]  # networks after containers, retried
    assert sorted(done.containers) == ["marked", "node", "probe"] and done.networks == ["net"]
    assert list(api.containers_) == ["other-session"]
    assert len(sleeps) == 3 and not done.failed


def test_prune_gives_up_on_a_network_that_stays_busy_and_says_so() -> None:
    api = FakeApi(busy=10**6)
    api.add("network", "net", {"s": "1"})
    now = iter(range(0, 1000, 5))
    done = prune(api, [{"label": ["s=1"]}], network_retry_s=20, sleep=lambda _: None, clock=lambda: next(now))
    assert done.networks == [] and done.failed and "network net" in done.failed[0]


def test_the_server_acks_each_line_and_returns_the_filters_once_idle() -> None:
    async def scenario() -> tuple[list[bytes], list[dict[str, list[str]]], float]:
        server = RyukServer(Lifetime(connection_timeout=5, reconnection_timeout=0.3, started=time.monotonic()))
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        idle = asyncio.create_task(server.until_prune())
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"label=a=1\r\nlabel=b=2&label=c=3\r\nlabel=a=1\r\n")
        answers = [await reader.readline() for _ in range(3)]
        await asyncio.sleep(0.5)  # longer than the reconnection timeout, but connected: no prune
        assert not idle.done()
        writer.close()
        left = time.monotonic()
        filters = await asyncio.wait_for(idle, 5)
        listener.close()
        return answers, filters, time.monotonic() - left

    answers, filters, waited = asyncio.run(scenario())
    assert answers == [b"ACK\n"] * 3
    assert filters == [{"label": ["a=1"]}, {"label": ["b=2", "c=3"]}]
    assert 0.25 <= waited < 2
