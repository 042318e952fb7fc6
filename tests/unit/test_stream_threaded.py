"""ThreadedStream: order of writes, a blocking stream off the hub, open/close forwarding, failures."""
import threading
import time

import gevent

from gcircus.stream import QueueStream, ThreadedStream, notify_eof


class Recorder:
    """A stream that records what reached it and from which thread."""

    def __init__(self):
        self.calls = []
        self.threads = set()

    def __call__(self, chunk):
        self.threads.add(threading.get_ident())
        self.calls.append(chunk['data'])

    def open(self):
        self.calls.append('open')

    def close(self):
        self.calls.append('close')

    def flush_partial(self, pid, name):
        self.calls.append(('eof', pid, name))


def chunk(number):
    return {'data': number, 'pid': 1, 'name': 'stdout'}


def test_writes_keep_their_order_and_run_off_the_hub_thread():
    inner = Recorder()
    stream = ThreadedStream(inner, max_pending=4)
    stream.open()
    for number in range(500):
        stream(chunk(number))
    notify_eof(stream, 1, 'stdout')
    stream.close()
    assert inner.calls == ['open'] + list(range(500)) + [('eof', 1, 'stdout'), 'close']
    assert threading.get_ident() not in inner.threads


def test_writes_from_several_greenlets_are_all_delivered():
    inner = Recorder()
    stream = ThreadedStream(inner, max_pending=2)
    producers = [gevent.spawn(lambda base=base: [stream(chunk(base + n)) for n in range(100)])
                 for base in (0, 1000, 2000)]
    gevent.joinall(producers, raise_error=True)
    stream.close()
    for base in (0, 1000, 2000):
        assert [n for n in inner.calls if isinstance(n, int) and base <= n < base + 100] == list(
            range(base, base + 100))


def test_a_blocking_stream_does_not_block_other_greenlets():
    # The inner stream blocks its thread until a greenlet releases it: if the write ran on the hub, that greenlet
    # could never run and the wait would time out.
    released = threading.Event()
    outcome = []

    class Blocking:
        def __call__(self, chunk):
            outcome.append(released.wait(30))

    stream = ThreadedStream(Blocking())
    stream(chunk(1))
    gevent.spawn(released.set)
    stream.close()
    assert outcome == [True]


def test_a_sleeping_stream_lets_greenlets_run_meanwhile():
    events = []

    class Sleepy:
        def __call__(self, chunk):
            time.sleep(0.2)         # the stream's own (blocking) behaviour
            events.append('write done')

    stream = ThreadedStream(Sleepy())
    stream(chunk(1))
    gevent.spawn(events.append, 'greenlet ran')
    stream.close()
    assert events == ['greenlet ran', 'write done']


def test_an_inner_exception_is_logged_and_later_writes_continue(caplog):
    seen = []

    def flaky(chunk):
        if chunk['data'] == 2:
            raise RuntimeError('boom')
        seen.append(chunk['data'])

    stream = ThreadedStream(flaky)
    for number in range(4):
        stream(chunk(number))
    stream.close()
    assert seen == [0, 1, 3]
    assert 'boom' in caplog.text


def test_a_failure_is_logged_once_per_incident(caplog):
    broken = {'now': True}

    def disk(chunk):
        if broken['now']:
            raise OSError(28, 'No space left on device')

    stream = ThreadedStream(disk)
    for number in range(5):
        stream(chunk(number))
    broken['now'] = False
    stream(chunk(5))
    broken['now'] = True
    stream(chunk(6))
    stream.close()
    assert caplog.text.count('No space left on device') == 2     # two incidents, not six failed writes
    assert caplog.text.count('works again') == 1


def test_close_waits_only_up_to_its_timeout(caplog):
    released = threading.Event()
    finished = []

    class Stuck:
        def __call__(self, chunk):
            released.wait(30)

        def close(self):
            finished.append('closed')

    stream = ThreadedStream(Stuck(), close_timeout=0.05)
    stream(chunk(1))
    stream.close()
    assert 'still running' in caplog.text and finished == []
    released.set()
    gevent.wait([gevent.spawn(stream.close)], timeout=30)
    assert finished == ['closed', 'closed']


def test_attributes_are_read_from_the_inner_stream():
    queue = QueueStream()
    stream = ThreadedStream(queue)
    stream(chunk(b'x'))
    notify_eof(stream, 1, 'stdout')
    stream.close()
    assert stream.get_nowait() == chunk(b'x')
    assert stream.get_nowait() == {'data': b'', 'pid': 1, 'name': 'stdout', 'eof': True}
    assert stream.empty()


def test_a_stream_built_in_one_thread_writes_from_another_threads_hub():
    """A background arbiter builds its watchers' streams in the caller's thread and writes from its
    own: a full queue must wait on the writing hub, not on the builder's."""
    gevent.get_hub()                    # the building thread has a hub of its own
    inner = Recorder()
    stream = ThreadedStream(inner, max_pending=1)
    failures = []

    def write_from_another_hub():
        try:
            for number in range(20):
                stream(chunk(number))
            stream.close()
        except BaseException as error:     # reported to the test's thread
            failures.append(error)

    writer = threading.Thread(target=write_from_another_hub, daemon=True)
    writer.start()
    writer.join(30)
    assert not writer.is_alive() and not failures
    assert inner.calls == list(range(20)) + ['close']
