"""When an injected RST raced data in flight: this end sent the peer something after the RST."""

from harness.cf.capture import raced


def test_an_ack_after_the_rst_on_the_wire_is_a_race() -> None:
    assert raced([(10.00, False), (10.02, True), (10.03, False)], sent_at=10.01)


def test_an_ack_that_left_while_the_rst_was_being_built_is_not() -> None:
    # decided at 10.01; the ACK left at 10.015, the RST reached the wire at 10.02: the ACK got there first
    assert not raced([(10.00, False), (10.015, False), (10.02, True)], sent_at=10.01)


def test_nothing_after_the_rst_is_no_race() -> None:
    assert not raced([(10.00, False), (10.02, True)], sent_at=10.01)


def test_without_the_rst_captured_anything_after_the_decision_counts() -> None:
    assert raced([(10.00, False), (10.03, False)], sent_at=10.01)
