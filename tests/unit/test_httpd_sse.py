"""Per-client event stream queues: capped, never blocking the publisher, and honest about what was dropped."""
import json

from gcircus.httpd.sse import Channel, Client, encode


def message(n, size=90):
    return encode("lines", [n, "x" * size])


def parse(raw):
    kind, data = raw.decode().split("\n")[:2]
    return kind[len("event: "):], json.loads(data[len("data: "):])


def test_a_client_that_does_not_read_keeps_at_most_its_cap_then_learns_how_much_it_missed():
    client = Client(max_bytes=1000)
    messages = [message(n) for n in range(50)]
    kept = 1000 // len(messages[0])
    assert [client.push(m) for m in messages] == [True] * kept + [False] * (50 - kept)
    assert client.queued_bytes <= 1000 and client.dropped == 50 - kept
    body = client.messages()
    assert next(body).startswith(b"retry:")
    assert [next(body) for _ in range(kept)] == messages[:kept]
    assert parse(next(body)) == ("missed", {"messages": 50 - kept})
    assert client.push(messages[0]) and next(body) == messages[0]    # caught up: messages flow again
    client.close()
    assert list(body) == []


def test_the_gap_keeps_growing_until_the_client_reaches_it():
    client = Client(max_bytes=len(message(0)))
    assert client.push(message(0)) and not client.push(message(1))
    body = client.messages()
    next(body)
    assert next(body) == message(0)
    assert not client.push(message(2))     # the gap is still queued: dropped too, counted in it
    assert parse(next(body)) == ("missed", {"messages": 2})
    assert client.push(message(3)) and next(body) == message(3)


def test_resync_follows_a_missed_notice():
    client = Client(max_bytes=1, resync=lambda: encode("snapshot", {"all": True}))
    client.push(message(0))
    body = client.messages()
    next(body)
    assert parse(next(body)) == ("missed", {"messages": 1})
    assert parse(next(body)) == ("snapshot", {"all": True})


def test_channel_filters_counts_drops_and_forgets_closed_clients():
    channel = Channel()
    assert not channel
    mine = channel.add(Client(filter=lambda key: key == 1, max_bytes=len(message(0))))
    other = channel.add(Client())
    channel.publish(message(0), 1)
    channel.publish(message(1), 2)
    channel.publish(message(2), 1)
    assert list(mine.queue)[0] == message(0) and len(mine.queue) == 2      # the message, then the gap
    assert len(other.queue) == 3 and channel.dropped_total == 1
    body = other.messages()
    next(body)
    body.close()                      # the browser went away
    assert channel.clients == {mine}
    channel.close()
    assert mine.closed and not channel
