from harness.protocol.retry import MAX_DELAY_S, MIN_DELAY_S, Backoff, retryable


def test_delays_double_from_500ms_and_cap_at_one_minute() -> None:
    backoff = Backoff()
    delays = [backoff.failed() for _ in range(10)]
    assert delays[:8] == [0.5, 1, 2, 4, 8, 16, 32, 60]
    assert delays[8:] == [MAX_DELAY_S, MAX_DELAY_S]


def test_a_successful_connect_resets_the_delay() -> None:
    backoff = Backoff()
    for _ in range(5):
        backoff.failed()
    backoff.connected()
    assert backoff.failed() == MIN_DELAY_S
    assert backoff.failed() == 1.0


def test_every_failure_is_retried_but_an_unusable_url() -> None:
    for kind in (None, "handshake_status", "handshake_timeout", "connect_refused", "connect_timeout", "dns",
                 "handshake_failed", "connect_error"):
        assert retryable(kind), kind
    assert not retryable("bad_scheme")
