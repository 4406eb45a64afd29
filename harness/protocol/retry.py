"""noaa's reconnect policy, sans I/O: which failures are retried and how long to wait before each.

noaa's ``retryAction`` (cloudfoundry/noaa ``consumer/async.go``) retries every error but a
``NonRetryError`` (an unparseable URL or a scheme other than ws/wss): dial errors, any non-101
answer (400, 401, 404, 502, 503 alike), a stream that ended, even cleanly. It sleeps
``DefaultMinRetryDelay`` (500 ms) after a failure, doubles the sleep after each one up to
``DefaultMaxRetryDelay`` (1 min), and resets it to 500 ms from the on-connect callback, i.e. after
every successful handshake. The ``*WithoutReconnect`` variants make exactly one attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_DELAY_S = 0.5  # noaa DefaultMinRetryDelay
MAX_DELAY_S = 60.0  # noaa DefaultMaxRetryDelay
#: Error kinds noaa does not retry (``noaa_errors.NonRetryError``): the URL itself is unusable.
NON_RETRY = frozenset({"bad_scheme"})


def retryable(error_kind: str | None) -> bool:
    """Whether noaa would try again after an attempt that ended with ``error_kind`` (None: the
    stream was up and ended, which noaa retries as well)."""
    return error_kind not in NON_RETRY


@dataclass
class Backoff:
    """The sleep before the next attempt; ``connected()`` when a handshake succeeded, ``failed()``
    after each attempt that ended (a broken stream included), which returns the sleep to take."""

    min_delay: float = MIN_DELAY_S
    max_delay: float = MAX_DELAY_S
    #: the sleep the next failure will take
    current: float = MIN_DELAY_S

    def connected(self) -> None:
        self.current = self.min_delay

    def failed(self) -> float:
        """Sleep this long, then try again (noaa: sleep, then double, capped)."""
        delay = self.current
        self.current = min(self.current * 2, self.max_delay)
        return delay
