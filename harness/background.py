"""A call run beside the test (an emitter feeding a stream while the test watches it) whose error
the test gets back. A bare ``threading.Thread`` drops it: an emitter that failed showed only as a
stream short of envelopes, judged as the path's fault, with pytest's thread warning the only trace."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Background:
    """``fn(*args, **kwargs)`` in a daemon thread, started at once. ``join`` waits (bounded) and
    raises what it raised; ``raise_if_failed`` raises it without waiting, for callers that do not
    wait for it to end (a paced emitter may outlive the client's result)."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True,
                                         name=f"background-{getattr(fn, '__name__', 'call')}")
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test by join / raise_if_failed
            self.error = exc

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error
