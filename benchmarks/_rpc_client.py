"""A control client of the suite: as many status calls as it can during a window, one request outstanding.

    _rpc_client.py --kind zmq|xmlrpc --address ADDRESS --start-at EPOCH --seconds S --out PATH [--command list]

- zmq (gcircus, Circus): a DEALER socket connected to the controller endpoint sends the Circus message
  ``{"id": <uuid hex>, "command": "status", "properties": {"name": "w"}}`` as JSON and reads the JSON reply; a
  call counts as good when the reply carries the same id and its "status" is "active" or "ok";
- xmlrpc (Supervisor): ``ServerProxy(ADDRESS).supervisor.getProcessInfo("w:w_0")``; good when it returns a
  dict naming the process.

With ``--command list``: ``list`` of watcher w (its pids; good when the reply has them) or, for Supervisor, which
has no per-group list, ``supervisor.getAllProcessInfo()`` (good when it returns a list).

Several workers start together: each connects, makes one untimed warm-up call, then sleeps until the shared
wall-clock time --start-at and calls until --start-at + --seconds (at least once: a worker whose warm-up made it
start after its window, as against a very busy daemon, still times one call). It writes JSON to --out: calls, errors, the
first error, how late it started, and the latencies of its calls in milliseconds (sorted).
"""
import argparse
import json
import os
import socket
import time
import uuid
import xmlrpc.client

TIMEOUT = 10.0


class ZmqStatus:
    command = "status"

    def __init__(self, address):
        import zmq
        self.zmq = zmq
        self.context = zmq.Context()
        self.socket = None
        self.address = address
        self._connect()

    def _connect(self):
        if self.socket is not None:
            self.socket.close(linger=0)
        self.socket = self.context.socket(self.zmq.DEALER)
        self.socket.linger = 0
        self.socket.connect(self.address)

    def call(self):
        message_id = uuid.uuid4().hex
        self.socket.send(json.dumps({"id": message_id, "command": self.command,
                                     "properties": {"name": "w"}}).encode())
        deadline = time.monotonic() + TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(remaining * 1000):
                self._connect()     # a late reply must not be taken for the next call's
                raise TimeoutError("no reply in %ss" % TIMEOUT)
            reply = json.loads(self.socket.recv_multipart()[-1])
            if reply.get("id") not in (None, message_id):
                continue            # a reply to an earlier, timed-out call
            if reply.get("status") not in ("active", "ok") or not self.good(reply):
                raise RuntimeError("reply %r" % (reply,))
            return

    def good(self, reply):
        return True

    def close(self):
        self.socket.close(linger=0)
        self.context.term()


class XmlRpcStatus:
    def __init__(self, address):
        self.proxy = xmlrpc.client.ServerProxy(address)

    def call(self):
        info = self.proxy.supervisor.getProcessInfo("w:w_0")
        if not isinstance(info, dict) or info.get("name") != "w_0":
            raise RuntimeError("reply %r" % (info,))

    def close(self):
        self.proxy("close")()


class ZmqList(ZmqStatus):
    command = "list"

    def good(self, reply):
        return isinstance(reply.get("pids"), list)


class XmlRpcList(XmlRpcStatus):
    def call(self):
        infos = self.proxy.supervisor.getAllProcessInfo()
        if not isinstance(infos, list):
            raise RuntimeError("reply %r" % (infos,))


CLIENTS = {("zmq", "status"): ZmqStatus, ("xmlrpc", "status"): XmlRpcStatus,
           ("zmq", "list"): ZmqList, ("xmlrpc", "list"): XmlRpcList}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("zmq", "xmlrpc"), required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--start-at", type=float, required=True, help="time.time() to start calling at")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--command", choices=("status", "list"), default="status")
    args = parser.parse_args()
    socket.setdefaulttimeout(TIMEOUT)
    client = CLIENTS[args.kind, args.command](args.address)
    errors, first_error, latencies = 0, None, []
    try:
        client.call()       # warm-up: connection set up, not measured
    except Exception as error:
        errors, first_error = 1, "warm-up: %s: %s" % (type(error).__name__, error)
    time.sleep(max(0.0, args.start_at - time.time()))
    late = time.time() - args.start_at
    end = time.perf_counter() + args.seconds - max(0.0, late)
    while True:
        began = time.perf_counter()
        if began >= end and (latencies or errors):
            break       # (a worker that started after its window still makes one call: a busy daemon is a result)
        try:
            client.call()
        except Exception as error:      # counted, and the worker goes on
            errors += 1
            first_error = first_error or "%s: %s" % (type(error).__name__, error)
            continue
        latencies.append((time.perf_counter() - began) * 1000.0)
    client.close()
    latencies.sort()
    result = {"calls": len(latencies), "errors": errors, "first_error": first_error, "late_s": late,
              "latencies_ms": latencies}
    with open(args.out + ".tmp", "w") as handle:
        json.dump(result, handle)
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
