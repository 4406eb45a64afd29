"""The harness's exceptions. Each carries the evidence a person needs to act on it.

    HarnessError
     ├── TopologyError        a topology file is invalid (file, field, what is allowed)
     │    └── DriverError     an LB driver file or template is invalid
     ├── ImageBuildError      an image could not be built (image, build output, hint)
     ├── NodeStartError       a container did not become ready (node, wait, logs)
     └── ScenarioError        a scenario step could not run (command, output)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """Base class: everything the harness raises on purpose."""


class TopologyError(HarnessError):
    def __init__(self, file: str, field: str, problem: str, fix: str) -> None:
        super().__init__(file, field, problem, fix)
        self.file, self.field, self.problem, self.fix = file, field, problem, fix

    def __str__(self) -> str:  # one line: it becomes a pytest usage error as it is
        return " ".join(f"{self.file}: field '{self.field}': {self.problem}; fix: {self.fix}".split())


class DriverError(TopologyError):
    """Same shape as TopologyError, for ``driver.yaml`` files."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'http-upgrade'? "`` for the closest of ``choices`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


class ImageBuildError(HarnessError):
    def __init__(self, image: str, output: str, hint: str) -> None:
        super().__init__(image, output, hint)
        self.image, self.output, self.hint = image, output, hint

    def __str__(self) -> str:
        return f"image '{self.image}' failed to build ({self.hint}):\n{self.output}"


class NodeStartError(HarnessError):
    """A node never got ready: it timed out (``seconds`` is the limit) or it exited first
    (``exited``; ``seconds`` is how long it ran), in which case a longer wait would not help."""

    def __init__(self, node: str, waited_for: str, seconds: float, logs: str, exited: bool = False) -> None:
        super().__init__(node, waited_for, seconds, logs, exited)  # all of them: pickle rebuilds it from args
        self.node, self.waited_for, self.seconds, self.logs = node, waited_for, seconds, logs
        self.exited = exited

    def __str__(self) -> str:
        if self.exited:
            return (f"node '{self.node}' exited after {self.seconds:.0f} s, before {self.waited_for}: "
                    f"its last logs say why:\n{self.logs[-3000:]}")
        return (f"node '{self.node}' not ready: waited {self.seconds:.0f} s for {self.waited_for}; "
                f"raise HARNESS_TIMEOUT_FACTOR on a slow machine. Last logs:\n{self.logs[-3000:]}")


class ScenarioError(HarnessError):
    def __init__(self, what: str, output: str) -> None:
        super().__init__(what, output)
        self.what, self.output = what, output

    def __str__(self) -> str:
        return f"{self.what}:\n{self.output[-3000:]}"


class CatalogError(TopologyError):
    """Same shape as TopologyError, for the check catalog ``harness/checks.yaml``."""
