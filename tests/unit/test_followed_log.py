"""``FollowedLog``: lines from one followed log stream, split across chunks as the engine sends them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from harness.waiting import FollowedLog


class Stream:
    """A log stream the test feeds chunk by chunk; ``None`` ends it (the container exited)."""

    def __init__(self) -> None:
        self.chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        while (chunk := self.chunks.get()) is not None:
            yield chunk

    def close(self) -> None:
        self.closed = True
        self.chunks.put(None)


class Container:
    def __init__(self, stream: Stream) -> None:
        self.stream, self.calls = stream, 0

    def logs(self, **kw: object) -> Stream:
        self.calls += 1
        assert kw == {"stdout": True, "stderr": True, "stream": True, "follow": True}
        return self.stream


def test_lines_split_across_chunks_arrive_whole_and_waiters_wake() -> None:
    stream = Stream()
    container = Container(stream)
    log = FollowedLog(container)
    threading.Timer(0.1, lambda: (stream.chunks.put(b'{"event": "conn'), stream.chunks.put(b'ected"}\n{"ev'))).start()
    assert log.wait(lambda lines: any('"connected"' in line for line in lines), 5)
    assert log.lines() == ['{"event": "connected"}']  # the half line waits for its end
    stream.chunks.put(b'ent": "result"}')
    stream.chunks.put(None)  # exits without a last newline: the line still counts
    assert log.wait(lambda lines: len(lines) == 2, 5)
    assert log.lines()[-1] == '{"event": "result"}'
    assert container.calls == 1  # one followed stream, no polling


def test_a_wait_ends_false_when_the_time_is_up_or_the_log_ended() -> None:
    stream = Stream()
    log = FollowedLog(Container(stream))
    assert not log.wait(lambda lines: bool(lines), 0.2)
    stream.chunks.put(None)
    assert not log.wait(lambda lines: bool(lines), 30)  # at once: nothing more can come
    log.close()
    assert stream.closed
