"""SocketReader: one greenlet reading a plain zmq ROUTER on the hub, replies sent by any greenlet.

The socket's fd is edge-triggered and a send may consume the news of requests that arrived meanwhile:
these tests run real sockets with many requests in flight and replies written by other greenlets, and
fail (at a deadline, with every greenlet's stack) if one wake-up is lost.
"""
import threading

import gevent
import pytest
import zmq

from gcircus.endpoints.reader import SocketReader
from tests.support.wait import wait_until

REQUESTS = 3000
IN_FLIGHT = 50


@pytest.fixture
def router():
    context = zmq.Context()
    socket = context.socket(zmq.ROUTER)
    socket.linger = 0
    port = socket.bind_to_random_port("tcp://127.0.0.1")
    reader = SocketReader(socket)
    yield context, socket, reader, "tcp://127.0.0.1:%d" % port
    reader.close()
    socket.close()
    context.term()


def _client(context, address, count, in_flight, replies, kind=zmq.DEALER):
    """A plain thread: keeps in_flight requests outstanding until count replies came back."""
    socket = context.socket(kind)
    socket.linger = 0
    socket.connect(address)
    sent = 0
    try:
        while len(replies) < count:
            while sent < count and sent - len(replies) < in_flight:
                socket.send(b"%d" % sent)
                sent += 1
            if not socket.poll(10000):
                return      # the test's deadline reports what is missing
            replies.append(socket.recv_multipart()[-1])
    finally:
        socket.close()


def test_requests_arriving_while_other_greenlets_reply_are_all_read(router):
    context, socket, reader, address = router
    received = []

    def reply_later(frames):
        gevent.sleep(0)     # replied from another greenlet, while the reader waits
        reader.send_multipart(frames[:-1] + [b"re:" + frames[-1].bytes])

    def read():
        while True:
            frames = reader.recv_multipart()
            received.append(frames[-1].bytes)
            gevent.spawn(reply_later, frames)

    greenlet = gevent.spawn(read)
    replies = []
    thread = threading.Thread(target=_client, args=(context, address, REQUESTS, IN_FLIGHT, replies))
    thread.start()
    try:
        wait_until(lambda: len(replies) == REQUESTS and not thread.is_alive(), timeout=30,
                   what="every request read and answered",
                   detail=lambda: "%d read, %d answered" % (len(received), len(replies)))
    finally:
        greenlet.kill()
        thread.join(10)
    assert sorted(received, key=int) == [b"%d" % n for n in range(REQUESTS)]
    assert sorted(replies) == sorted(b"re:%d" % n for n in range(REQUESTS))


def test_a_req_envelope_comes_whole_and_its_reply_reaches_the_req(router):
    context, socket, reader, address = router
    got = []

    def serve():
        frames = reader.recv_multipart()
        got.append([frame.bytes for frame in frames])
        reader.send_multipart(frames[:-1] + [b"pong"])

    greenlet = gevent.spawn(serve)
    replies = []
    thread = threading.Thread(target=_client, args=(context, address, 1, 1, replies, zmq.REQ))
    thread.start()
    try:
        wait_until(lambda: replies, timeout=10, what="the REQ's reply")
    finally:
        greenlet.kill()
        thread.join(10)
    identity, delimiter, body = got[0]      # [routing id, empty delimiter, body]: nothing split or lost
    assert identity and delimiter == b"" and body == b"0"
    assert replies == [b"pong"]


def test_a_reader_killed_while_waiting_leaves_the_socket_usable(router):
    context, socket, reader, address = router
    waiting = gevent.spawn(reader.recv_multipart)
    wait_until(lambda: reader.waits >= 1, timeout=5, what="the reader to wait")
    waiting.kill()
    assert waiting.dead

    greenlet = gevent.spawn(reader.recv_multipart)     # a new reader is woken as the first was
    replies = []
    thread = threading.Thread(target=_client, args=(context, address, 1, 1, replies))
    thread.start()
    try:
        frames = greenlet.get(timeout=10)
        reader.send_multipart(frames[:-1] + [b"ok"])
        wait_until(lambda: replies, timeout=10, what="the reply")
    finally:
        thread.join(10)
    assert frames[-1].bytes == b"0" and replies == [b"ok"]
