"""A container whose random host port was taken meanwhile is started again (``_start_container``);
any other start error, or a clash on a container without published ports, is raised as it was."""

from __future__ import annotations

from typing import Any

import docker
import pytest

from harness.deployment import PORT_CLASH_RETRIES, _start_container

CLASH = "driver failed programming external connectivity: listen tcp4 127.0.0.1:32777: bind: address already in use"


class Engine:
    """The engine side of a created container: its starts fail with ``errors`` one after another."""

    def __init__(self, errors: list[str]) -> None:
        self.errors, self.starts = errors, 0

    def start(self) -> None:
        self.starts += 1
        if self.errors:
            raise docker.errors.APIError("500 Server Error", explanation=self.errors.pop(0))


class Container:
    """testcontainers' DockerContainer as ``_start_container`` uses it: create, then the first start."""

    def __init__(self, errors: list[str]) -> None:
        self._name, self._container, self._wait_strategy = "hx-test-fp", None, None
        self.engine = Engine(errors)
        self.ready = 0

    def start(self) -> None:
        self._container = self.engine
        self.engine.start()


def test_a_port_clash_is_started_again_and_then_waited_for() -> None:
    container = Container([CLASH, CLASH])

    class Wait:
        def wait_until_ready(self, c: Any) -> None:
            c.ready += 1

    container._wait_strategy = Wait()
    _start_container(container, retry_port_clash=True)  # type: ignore[arg-type]
    assert container.engine.starts == 3 and container.ready == 1


def test_clashes_beyond_the_retries_are_raised() -> None:
    container = Container([CLASH] * (PORT_CLASH_RETRIES + 1))
    with pytest.raises(docker.errors.APIError, match="address already in use"):
        _start_container(container, retry_port_clash=True)  # type: ignore[arg-type]
    assert container.engine.starts == PORT_CLASH_RETRIES + 1


@pytest.mark.parametrize("errors,retry", [(["no such image"], True), ([CLASH], False)])
def test_other_errors_and_containers_without_published_ports_are_not_retried(errors: list[str], retry: bool) -> None:
    container = Container(errors)
    with pytest.raises(docker.errors.APIError):
        _start_container(container, retry_port_clash=retry)  # type: ignore[arg-type]
    assert container.engine.starts == 1
