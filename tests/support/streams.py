"""Streams shared by the tests and the benchmarks."""
import gevent.event

from gcircus.stream import FileStream


class FramedCounter(FileStream):
    """A FileStream framing lines (slower than `yes` writes them) that says when `target` bytes went through."""

    def __init__(self, filename, target):
        super().__init__(filename, time_format="%H:%M:%S")
        self.total, self.target = 0, target
        self.reached = gevent.event.Event()

    def __call__(self, chunk):
        super().__call__(chunk)
        self.total += len(chunk["data"])
        if self.total >= self.target:
            self.reached.set()
