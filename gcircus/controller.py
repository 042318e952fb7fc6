"""Controller: the ROUTER socket on `endpoint`, and the one place where a wire
request becomes a command call and an exception becomes a wire error (Circus's
request/reply JSON, with an error reply for malformed input where Circus stays silent).

Every request that may wait runs in its own greenlet, so a command waiting on one
watcher never delays commands on other watchers; cheap reads (`instant` commands)
are answered inline by the reader, and every reply is written by whoever has it.
Every request that carries a routing identity gets an answer — malformed JSON,
a non-object, a missing command, wrong frame counts and oversized bodies
included — unless it asked not to (`msg_type: cast`).
"""
import json
import logging
import time
import traceback

import gevent
import zmq.green as zmq
from gevent.pool import Group
from zmq import Socket as PlainSocket

from gcircus.endpoints import binding, curve
from gcircus.commands import get_command
from gcircus.commands.base import Deferred
from gcircus.exc import ArgumentError, ConflictError, MessageError
from gcircus.endpoints.reader import SocketReader
from gcircus.supervision.hub_guard import Slicer

logger = logging.getLogger("gcircus")

# errno values of the wire protocol (Circus's, which clients test for).
NOT_SPECIFIED = 0
INVALID_JSON = 1
UNKNOWN_COMMAND = 2
MESSAGE_ERROR = 3
OS_ERROR = 4
COMMAND_ERROR = 5
BAD_MSG_DATA_ERROR = 6

# Bodies above max_message_size are answered with an error; libzmq drops peers that
# send more than HARD_MESSAGE_SIZE, so no message is ever buffered without bound.
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
HARD_MESSAGE_SIZE = 16 << 20
# No command takes structures nested more than a few levels; deeper ones are refused
# before anything walks them (Python's parser and encoder recurse, ~1,000 levels at most).
MAX_NESTING = 100
# Per-peer queue of unread requests; past it the peer's TCP connection pushes back.
RECEIVE_HWM = 64
# A request still waiting for its watcher after this many seconds is answered with an
# error instead of being executed: its client has given up long ago (Circus's clients
# and gcircusctl wait 5 s by default), and acting on it late would surprise everyone.
DEFAULT_MAX_REQUEST_WAIT = 10.0
# How long stop() lets queued replies (quit's, above all) leave before closing.
CLOSE_LINGER_MS = 1000
# How long stop() lets requests still running finish before it ends them.
STOP_GRACE = 1.0
STOPPED_BEFORE_DONE = "the arbiter stopped before this command finished"
# How long an endpoint replaced by rebind() keeps serving the connections it has.
REBIND_GRACE = 1.0


class WireError(Exception):
    """A request that cannot be served, with the errno and reason to answer it with."""

    def __init__(self, errno, reason):
        super().__init__(reason)
        self.errno = errno
        self.reason = reason


class _Request:
    """One request being served: where its reply goes and whether it has one yet."""

    __slots__ = ("envelope", "raw", "mid", "cast", "replied", "received")

    def __init__(self, envelope, raw):
        self.envelope = envelope
        self.raw = raw
        self.mid = None
        self.cast = False
        self.replied = False
        self.received = time.monotonic()


class Controller:
    """Serves Circus's command protocol for one arbiter on a zmq.green ROUTER socket."""

    def __init__(self, arbiter, endpoint, context=None):
        self.arbiter = arbiter
        self.endpoint = endpoint
        self.context = context or zmq.Context.instance()
        options = arbiter.options
        self.max_message_size = int(options.get("max_message_size") or DEFAULT_MAX_MESSAGE_SIZE)
        self.max_request_wait = float(options.get("max_request_wait") or DEFAULT_MAX_REQUEST_WAIT)
        self.security = curve.ServerSecurity.from_options(options)
        self.socket = None
        self._reader = None
        self._receiver = None
        self._requests = Group()
        self._pending = set()
        self._guards = []          # ZAP registration and handshake monitors, stopped with us
        self.inproc_endpoint = None  # bound by start(): in-process DEALERs (plugins) connect there

    # -- lifecycle -------------------------------------------------------------------

    def start(self):
        # a plain socket served by SocketReader: zmq.green's per-call overhead was most of a request's cost
        socket = PlainSocket(self.context, zmq.ROUTER)
        socket.linger = 0
        socket.setsockopt(zmq.MAXMSGSIZE, max(HARD_MESSAGE_SIZE, self.max_message_size + 1024))
        socket.rcvhwm = RECEIVE_HWM
        try:
            if self.security is not None:
                self._guards.extend(self.security.protect(socket, self.endpoint, "controller"))
            binding.bind_endpoint(socket, self.endpoint, self.arbiter.options)
            # in-process clients (plugins) connect here, sparing them a TCP round trip; inproc skips CurveZMQ
            inproc = "inproc://gcircus-controller-%x" % id(self)
            socket.bind(inproc)
            self.inproc_endpoint = inproc
        except Exception:
            socket.close()
            self._stop_guards()
            raise
        binding.warn_if_exposed(self.endpoint, self.security is not None)
        self.socket = socket
        self._reader = SocketReader(socket)
        self._secure_publisher()
        self._receiver = gevent.spawn(self._receive_loop)
        self._receiver.name = "controller"
        logger.debug("controller listening on %s", self.endpoint)

    def _secure_publisher(self):
        """Give the event socket the controller's protection (CurveZMQ, ipc owner/mode).

        The arbiter binds its PUB socket before it creates us, so a CurveZMQ
        configuration means binding it again with the keys in place.
        """
        publisher = self.arbiter.publisher
        if publisher.socket is None or publisher.endpoint is None:
            return
        # (without CurveZMQ the publisher's own bind already applied the ipc owner/mode)
        if self.security is not None:
            self._guards.extend(self.security.rebind(publisher, "events", self.arbiter.options))

    def stop(self):
        """Stop serving: requests still in flight get STOP_GRACE to finish, then an error reply;
        the socket lingers CLOSE_LINGER_MS so the last replies (quit's) leave."""
        current = gevent.getcurrent()
        for greenlet in (self._receiver,):
            if greenlet is not None and greenlet is not current:
                greenlet.kill()
        self._receiver = None
        others = [g for g in self._requests if g is not current]
        gevent.joinall(others, timeout=STOP_GRACE)    # let what is nearly done answer itself
        for greenlet in others:
            greenlet.kill(block=False)
        gevent.joinall(others, timeout=5)
        for request in list(self._pending):
            if not request.replied and not request.cast:
                self._reply_error(request, WireError(COMMAND_ERROR, STOPPED_BEFORE_DONE))
        if self.socket is not None:
            self._refuse_unread()
            self._reader.close()
            self.socket.linger = CLOSE_LINGER_MS
            self.socket.close()
            binding.remove_ipc_file(self.endpoint)
            self.socket = None
        self._stop_guards()

    def _refuse_unread(self):
        """Answer what arrived since the reader stopped with an error: every request gets a reply."""
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.ZMQError:
                return      # nothing more (zmq.Again), or the socket is unusable
            envelope, body = split_envelope(frames)
            if envelope is None:
                continue
            request = _Request([frame.bytes for frame in envelope], body.bytes if body is not None else b"")
            try:
                self._parse(request)        # for its id, so that the client knows the reply is its own
            except WireError:
                pass
            self._reply_error(request, WireError(COMMAND_ERROR, "arbiter is stopping"))

    def rebind(self, endpoint):
        """Serve on endpoint instead: the new address is bound at once, the old one released
        REBIND_GRACE seconds later (unbinding drops its connections, and with them the
        replies still on their way — the reply to the reloadconfig that moved us, say)."""
        if self.socket is None:
            self.endpoint = endpoint
            return
        binding.bind_endpoint(self.socket, endpoint, self.arbiter.options)
        old, self.endpoint = self.endpoint, endpoint
        gevent.spawn_later(REBIND_GRACE, self._release_endpoint, old).name = "controller[unbind]"

    def _release_endpoint(self, endpoint):
        if self.socket is None:
            return
        try:
            self.socket.unbind(endpoint)
        except zmq.ZMQError as error:
            logger.warning("cannot release the old endpoint %s: %s", endpoint, error)

    def _stop_guards(self):
        for guard in reversed(self._guards):
            try:
                guard.stop()
            except Exception:
                logger.exception("stopping %r failed", guard)
        self._guards = []

    # -- receiving ---------------------------------------------------------------------

    def _receive_loop(self):
        """Owned by the controller; lives from start() until stop(); reads requests and
        answers instant ones itself, hands the others to a greenlet each. A flood of
        requests is read in slices: the hub gets a turn every few ms in between."""
        slicer = Slicer()
        while True:
            waits = self._reader.waits
            try:
                frames = self._reader.recv_multipart()
            except zmq.ZMQError as error:
                if error.errno in (zmq.ETERM, zmq.ENOTSOCK):
                    return
                logger.warning("controller: receive failed: %s", error)
                continue
            try:
                self._accept(frames)
            except Exception:
                logger.exception("controller: could not handle a message")
            if self._reader.waits != waits:
                slicer.reset()      # we waited for this one: the hub had its turn then
            slicer.tick()

    def _accept(self, frames):
        size = sum(len(frame) for frame in frames)
        if size > self.max_message_size:
            # Answered without decoding, to the sender alone (a REQ one in kind): the
            # frames are dropped as soon as we return.
            envelope = frames[:2] if len(frames) > 2 and len(frames[1]) == 0 else frames[:1]
            logger.warning("controller: refused a %d-byte message (limit %d)", size, self.max_message_size)
            return self._reply_error(_Request([f.bytes for f in envelope], b""), WireError(
                MESSAGE_ERROR, "message too large: %d bytes (limit %d)" % (size, self.max_message_size)))
        envelope, body = split_envelope(frames)
        if envelope is None:
            logger.warning("controller: dropped a message without routing identity")
            return
        envelope = [frame.bytes for frame in envelope]
        if body is None:
            count = len(frames) - len(envelope)
            return self._reply_error(_Request(envelope, b""), WireError(
                MESSAGE_ERROR, "message invalid: expected one body frame, got %d" % count))
        request = _Request(envelope, body.bytes)
        self._pending.add(request)
        try:
            command, props = self._parse(request)
        except WireError as error:
            self._reply_error(request, error)
            self._pending.discard(request)
            return
        if command.instant:
            self._serve(request, command, props)    # cheap reads never yield: no greenlet for them
            return
        if command.stops_arbiter and not self.arbiter.stopping:
            try:
                command.validate(props)
            except Exception as error:
                return self._serve_error(request, error)
            # now, not when its turn comes: requests queued before it are refused, nothing spawns
            self.arbiter.begin_stopping()
        greenlet = self._requests.spawn(self._serve, request, command, props)
        greenlet.name = "command[%s]" % command.name

    # -- serving -----------------------------------------------------------------------

    def _serve(self, request, command, props):
        """Validate, execute; exceptions become wire errors here and only here."""
        try:
            if not command.read_only and not command.stops_arbiter and self.arbiter.stopping:
                # Whatever it would start now would be left behind by the ongoing stop.
                raise WireError(COMMAND_ERROR, "arbiter is stopping")
            command.validate(props)
            lock = None if command.read_only else self._watcher_lock(props)
            if lock is not None and not lock.acquire(timeout=self._patience_left(request)):
                raise WireError(COMMAND_ERROR, "watcher %s stayed busy for %.0fs: the request was "
                                "dropped, not executed (its client gave up long ago)"
                                % (props.get("name"), time.monotonic() - request.received))
            try:
                if lock is not None and not command.stops_arbiter and self.arbiter.stopping:
                    # a quit or signal that came while it waited its turn pre-empts it
                    raise WireError(COMMAND_ERROR, "arbiter is stopping")
                result = command.execute(self.arbiter, props)
            finally:
                if lock is not None:
                    lock.release()
            if isinstance(result, Deferred):
                self._run_deferred(request, result, props.get("waiting"))
            else:
                self._reply_ok(request, result)
        except gevent.GreenletExit:
            # the controller stops and cannot wait for it any longer: it still gets an answer
            if not request.replied:
                self._reply_error(request, WireError(COMMAND_ERROR, STOPPED_BEFORE_DONE))
            raise
        except Exception as error:  # the one mapping point: every failure gets its errno
            if request.replied or request.cast:
                logger.error("command %s failed after its reply: %s", _preview(request.raw), error,
                             exc_info=not isinstance(error, (WireError, MessageError)))
            else:
                self._reply_error(request, error)
        finally:
            self._pending.discard(request)

    def _serve_error(self, request, error):
        self._pending.discard(request)
        self._reply_error(request, error)

    def _watcher_lock(self, props):
        """The command lock of the watcher a request names, if it names one: the request
        waits for it here, with a deadline, rather than inside the command, without one."""
        name = props.get("name")
        if not isinstance(name, str):
            return None
        try:
            watcher = self.arbiter.get_watcher(name)
        except KeyError:
            return None     # a pattern, a new name, or a mistake the command reports itself
        return watcher.command_lock

    def _patience_left(self, request):
        return max(0.0, request.received + self.max_request_wait - time.monotonic())

    def _run_deferred(self, request, deferred, waiting):
        if waiting or request.cast:
            result = deferred.run()
            self._reply_ok(request, result)
        else:
            self._reply_ok(request, None)    # sent now, whatever the operation does to the sockets
            deferred.run()
        if deferred.finish is not None:
            finisher = gevent.spawn(deferred.finish)
            finisher.name = "controller[finish]"

    def _parse(self, request):
        """(command, properties) of a raw body; WireError for anything malformed."""
        try:
            message = json.loads(request.raw.decode("utf-8").strip())
        except (UnicodeDecodeError, ValueError):
            raise WireError(INVALID_JSON, "json invalid") from None
        except RecursionError:
            too_deep = True     # deeper than the parser itself goes
        else:
            too_deep = nesting_exceeds(request.raw, message, MAX_NESTING)
        if too_deep:
            raise WireError(MESSAGE_ERROR, "message invalid: JSON nested deeper than %d levels"
                            % MAX_NESTING)
        if not isinstance(message, dict):
            raise WireError(MESSAGE_ERROR, "message invalid: expected a JSON object, got %s"
                            % type(message).__name__)
        request.mid = message.get("id")
        request.cast = message.get("msg_type") == "cast"
        name = message.get("command")
        if not isinstance(name, str):
            raise WireError(MESSAGE_ERROR, "message invalid 'command' is missing"
                            if name is None else "message invalid: 'command' must be a string")
        props = message.get("properties", {})
        if props is None:
            props = {}
        if not isinstance(props, dict):
            raise WireError(MESSAGE_ERROR, "message invalid: 'properties' must be an object")
        command = get_command(name.lower())
        if command is None:
            raise WireError(UNKNOWN_COMMAND, "unknown command: %r" % name)
        return command, props

    # -- replies -----------------------------------------------------------------------

    def _reply_ok(self, request, result):
        if request.cast:
            request.replied = True
            return
        reply = {"status": "ok", "time": time.time()}
        if isinstance(result, dict):
            reply.update(result)
        elif isinstance(result, (list, tuple)):
            reply["results"] = list(result)
        elif result is not None:
            raise WireError(BAD_MSG_DATA_ERROR, "server error")
        reply["id"] = request.mid
        self._queue(request, reply)

    def _reply_error(self, request, error):
        if request.cast:
            return
        errno, reason, tb = error_fields(error, request.raw)
        self._queue(request, {"status": "error", "reason": reason, "tb": tb, "time": time.time(),
                              "errno": errno, "id": request.mid})

    def _queue(self, request, reply):
        try:
            body = json.dumps(reply, default=_jsonable).encode("utf-8")
        except (TypeError, ValueError) as error:
            logger.error("cannot encode the reply to %s: %s", _preview(request.raw), error)
            body = json.dumps({"status": "error", "reason": "server error: cannot encode the reply",
                               "tb": None, "time": time.time(), "errno": BAD_MSG_DATA_ERROR,
                               "id": _jsonable(request.mid)}).encode("utf-8")
        request.replied = True
        self._write(request.envelope + [body])

    def _write(self, frames):
        if self.socket is None:
            return
        try:
            # ROUTER never blocks on send (a reply to a vanished client is dropped by zmq), and a
            # NOBLOCK send never yields: any greenlet may write its reply itself, in one piece.
            self._reader.send_multipart(frames)
        except zmq.ZMQError as error:
            logger.warning("controller: could not send a reply: %s", error)


def split_envelope(frames):
    """(routing frames, body frame) of a ROUTER message.

    A DEALER's request is [identity, body]; a REQ's is [identity, b'', body]
    (answered in kind, with the same envelope). body is None when the frame
    count is wrong; envelope is None when there is not even an identity.
    """
    if not frames:
        return None, None
    for index in range(1, len(frames) - 1):
        if len(frames[index]) == 0:
            envelope, rest = frames[:index + 1], frames[index + 1:]
            return envelope, rest[0] if len(rest) == 1 else None
    if len(frames) == 2:
        return frames[:1], frames[1]
    return frames[:1], None


def nesting_exceeds(raw, value, limit):
    """True when the parsed value nests lists/objects deeper than limit levels.

    A body with fewer brackets than the limit cannot exceed it: the common case costs
    two byte counts, and only a bracket-heavy body is walked (without recursion).
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def error_fields(error, raw=b""):
    """(errno, reason, traceback or None) for an exception, numbered as Circus numbers them."""
    if isinstance(error, WireError):
        return error.errno, error.reason, None
    if isinstance(error, (MessageError, ArgumentError)):
        return MESSAGE_ERROR, str(error), None
    if isinstance(error, ConflictError):
        return COMMAND_ERROR, str(error), None
    if isinstance(error, OSError):
        return OS_ERROR, str(error), None
    # Anything else is a bug in gcircus, not a bad message: say so, and keep the traceback.
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    logger.error("command %s failed with an internal error:\n%s", _preview(raw), tb)
    return COMMAND_ERROR, "command %s: %s" % (_preview(raw), error), tb


def _preview(raw, limit=200):
    text = repr(raw[:limit])
    return text + ("..." if len(raw) > limit else "")


def _jsonable(value):
    """Fallback for reply values JSON cannot encode (stream objects in options, sets...)."""
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)
