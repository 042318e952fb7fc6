"""The JSON API: watchers as the dashboard shows them, and actions run through the controller's own commands.

An action is the wire command of the same name (gcircus.commands), validated and executed exactly as the
controller does it, so the reply and the error text are the ones gcircusctl shows. Errors become HTTP statuses
here: an unknown watcher 404, bad input 400, a conflict with the current state 409, anything else 500.
"""
import json

import gevent

from gcircus.commands import get_command
from gcircus.commands.base import Deferred
from gcircus.commands.base import get_watcher as find_watcher
from gcircus.commands.watcher_options import get_options
from gcircus.controller import MESSAGE_ERROR, error_fields
from gcircus.exc import ConflictError, MessageError
from gcircus.httpd.live import watcher_summary

#: action -> the parameters it takes besides the watcher's name (the command's own properties).
ACTIONS = {
    "start": ("waiting",),
    "stop": ("waiting",),
    "restart": ("waiting",),
    "reload": ("graceful", "sequential", "waiting"),
    "incr": ("nb", "waiting"),
    "decr": ("nb", "waiting"),
    "signal": ("signum", "pid", "childpid", "children", "recursive"),
}
#: the lifecycle commands match names as globs by default; a URL names one watcher exactly
_EXACT = ("start", "stop", "restart")


class ApiError(Exception):
    """An answer other than 200: HTTP status, the reason text, and the wire errno when a command gave one."""

    def __init__(self, status, reason, errno=None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.errno = errno

    def body(self):
        body = {"status": "error", "reason": self.reason}
        if self.errno is not None:
            body["errno"] = self.errno
        return body


def lookup(arbiter, name):
    """The watcher called name; ApiError 404 with the controller's reason when there is none."""
    try:
        return find_watcher(arbiter, name)
    except MessageError as error:
        raise ApiError(404, str(error), MESSAGE_ERROR) from None


def list_watchers(arbiter, live):
    return {"status": "ok", "watchers": [watcher_summary(w, live.figures) for w in arbiter.iter_watchers()]}


def show_watcher(arbiter, live, name):
    watcher = lookup(arbiter, name)
    body = {"status": "ok", "watcher": watcher_summary(watcher, live.figures)}
    body["watcher"]["options"] = get_options(watcher)
    return body


def run_action(arbiter, name, action, params):
    """Run action on the watcher called name with params (a dict from the request); the command's result."""
    if action not in ACTIONS:
        raise ApiError(404, "unknown action %r (one of %s)" % (action, ", ".join(sorted(ACTIONS))))
    watcher = lookup(arbiter, name)
    unknown = sorted(set(params) - set(ACTIONS[action]))
    if unknown:
        raise ApiError(400, "%s takes no parameter %s (it takes: %s)" % (
            action, ", ".join(unknown), ", ".join(ACTIONS[action])), MESSAGE_ERROR)
    props = dict(params, name=watcher.name)
    if action in _EXACT:
        props["match"] = "simple"
    if action != "signal":
        props.setdefault("waiting", True)    # an HTTP client waits for its answer: give it the result
    try:
        return _execute(arbiter, get_command(action), props)
    except Exception as error:
        raise _as_api_error(error, {"command": action, "properties": props}) from None


def _execute(arbiter, command, props):
    """What the controller does with a request, minus the wire: validate, execute, run what it deferred."""
    if not command.read_only and arbiter.stopping:
        raise ConflictError("arbiter is stopping")
    command.validate(props)
    result = command.execute(arbiter, props)
    if isinstance(result, Deferred):
        if props.get("waiting"):
            outcome = result.run()
        else:
            gevent.spawn(result.run).name = "httpd[%s]" % command.name
            outcome = None
        if result.finish is not None:
            gevent.spawn(result.finish).name = "httpd[finish]"
        result = outcome
    reply = {"status": "ok"}
    if isinstance(result, dict):
        reply.update(result)
    elif result is not None:
        reply["result"] = result
    return reply


def _as_api_error(error, request):
    """The controller's errno and reason for error (an internal error is logged there, with its traceback)."""
    errno, reason, _tb = error_fields(error, json.dumps(request, default=str).encode("utf-8"))
    if isinstance(error, ConflictError):
        return ApiError(409, reason, errno)
    if errno == MESSAGE_ERROR:
        return ApiError(400, reason, errno)
    return ApiError(500, reason, errno)
