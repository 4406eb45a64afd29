"""The engine's API version is asked once per process; every container, network and client the
harness builds afterwards names it (docker-py then asks ``GET /version`` no more)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Iterator

import docker
import pytest

from harness import engine


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every docker-py client built (no engine behind them)."""
    calls: list[dict[str, Any]] = []

    def from_env(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return SimpleNamespace(api=SimpleNamespace(api_version="1.41", headers={}))

    monkeypatch.setattr(docker, "from_env", from_env)
    engine.api_version.cache_clear()
    yield calls
    engine.api_version.cache_clear()


def test_the_version_is_asked_once_then_named_to_every_client(built: list[dict[str, Any]]) -> None:
    engine.container("harness-cf:x")
    engine.container("harness-nginx:y")
    engine.network(labels={"harness": "1"})
    engine.client()
    asked, *named = built
    assert "version" not in asked  # the one client that asks (version "auto")
    assert named == [{"version": "1.41"}] * 4


def test_without_it_each_container_asks_again(built: list[dict[str, Any]]) -> None:
    """The control: testcontainers as it comes builds each container's client with version "auto"."""
    from testcontainers.core.container import DockerContainer

    DockerContainer("harness-cf:x")
    DockerContainer("harness-nginx:y")
    assert all("version" not in kwargs for kwargs in built) and len(built) == 2
