"""The event socket sends only what some subscriber asked for, and counts a subscription from the moment it
reached the socket, as a PUB socket would: real zmq SUB sockets on an ipc endpoint."""
import json

import zmq

from gcircus.pubsub import Publisher
from tests.support.wait import wait_until


def _subscriber(endpoint, prefix):
    # a plain (not green) context: its blocking polls hold this thread, so the hub, and with it the
    # publisher's reader of subscriptions, does not run meanwhile
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.linger = 0
    socket.setsockopt(zmq.SUBSCRIBE, prefix)
    socket.connect(endpoint)
    return socket


def test_only_subscribed_topics_are_sent_and_a_waiting_subscription_counts_at_once(tmp_path):
    endpoint = "ipc://%s/events.sock" % tmp_path
    publisher = Publisher(endpoint)
    publisher.start()
    sub = _subscriber(endpoint, b"watcher.web.")
    try:
        assert not publisher.subscriptions
        # the subscription has reached the socket, the publisher's reader has not run since
        assert publisher.socket.poll(10000, zmq.POLLIN), "the subscription never reached the event socket"
        assert not publisher.subscriptions
        publisher.publish("watcher.web.spawn", {"pid": 42})      # takes the waiting subscription in first
        assert publisher.subscriptions == {b"watcher.web."}
        assert sub.poll(10000, zmq.POLLIN), "the subscribed event was not sent"
        topic, body = sub.recv_multipart()
        assert topic == b"watcher.web.spawn" and json.loads(body) == {"pid": 42}
        assert publisher.wanted("watcher.web.reap") and not publisher.wanted("watcher.webfront.spawn")
        assert not publisher.wanted("watcher.other.spawn") and not publisher.wanted("arbiter.stop")
    finally:
        sub.close()
    # the last subscriber of the prefix is gone: nothing is wanted any more
    wait_until(lambda: not publisher.subscriptions, 10, "the unsubscription of a closed subscriber")
    assert not publisher.wanted("watcher.web.spawn")
    publisher.stop()


def test_a_subscriber_to_everything_and_listeners_get_every_event(tmp_path):
    endpoint = "ipc://%s/events.sock" % tmp_path
    publisher = Publisher(endpoint)
    heard = []
    publisher.add_listener(lambda topic, message: heard.append(topic))
    publisher.start()
    try:
        publisher.publish("watcher.web.spawn", {})          # nobody subscribed: the listener still hears it
        assert heard == ["watcher.web.spawn"]
        sub = _subscriber(endpoint, b"")
        try:
            assert publisher.socket.poll(10000, zmq.POLLIN), "the subscription never reached the event socket"
            publisher.publish("arbiter.stop", {"time": 1.0})
            assert sub.poll(10000, zmq.POLLIN), "the event was not sent to a subscriber of every topic"
            assert sub.recv_multipart()[0] == b"arbiter.stop"
            assert heard == ["watcher.web.spawn", "arbiter.stop"]
        finally:
            sub.close()
    finally:
        publisher.stop()
    assert publisher.socket is None and not publisher.subscriptions
