"""Binding the daemon's zmq endpoints; ipc:// endpoints get `endpoint_owner` (chown) and
`endpoint_mode` (octal mode, also applied as the umask while binding, so the socket file
is never open to others, even briefly), and their socket files are removed on close."""
import logging
import os

import zmq

from gcircus.converters import to_file_mode
from gcircus.supervision import spawner

logger = logging.getLogger("gcircus")


def remove_ipc_file(endpoint):
    """Remove the socket file of an ipc:// endpoint we bound, once its socket is closed.

    libzmq unlinks it only when its I/O thread gets to the close before the process
    exits, which at daemon exit it often does not: a stale file would be left behind."""
    path = _ipc_path(endpoint)
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("cannot remove the socket file %s: %s", path, error)


def _ipc_path(endpoint):
    if not endpoint or not endpoint.startswith("ipc://"):
        return None
    path = endpoint[len("ipc://"):]
    return None if path.startswith("@") else path   # abstract sockets have no file


def root_exposure(endpoint, secured, euid=None):
    """How ``endpoint`` lets every local user send commands to a root daemon, or None when it does not.

    Circus's default (a loopback TCP endpoint, no CurveZMQ) is kept for compatibility; run as root it hands
    root to anyone who can connect, since `add` runs any command."""
    if (os.geteuid() if euid is None else euid) != 0 or secured or not endpoint:
        return None
    if endpoint.startswith("tcp://"):
        return "a TCP endpoint without CurveZMQ"
    if endpoint.startswith("ipc://@"):
        return "an abstract ipc socket (it has no file permissions)"
    path = _ipc_path(endpoint)
    if path is not None:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return None
        if mode & 0o002:
            return "an ipc socket file every user may write to (mode %03o)" % (mode & 0o777)
    return None


def warn_if_exposed(endpoint, secured):
    exposure = root_exposure(endpoint, secured)
    if exposure is not None:
        logger.warning("the daemon runs as root and its control endpoint %s is %s: every local user can connect "
                       "and run commands as root. Use an ipc:// endpoint with endpoint_mode = 0600 (and "
                       "endpoint_owner), or CurveZMQ keys (curve_secret_key, curve_allowed_keys)", endpoint, exposure)


def parse_mode(value):
    """An ipc socket mode from 0o600, 384 or '0600' / '600' (always octal as text); None when not set."""
    if value is None or value == "":
        return None
    return to_file_mode(value)


def bind_endpoint(socket, endpoint, options):
    """Bind socket; for ipc:// with endpoint_mode, no permission wider than it ever exists."""
    mode = parse_mode(options.get("endpoint_mode"))
    previous = os.umask(0o777 & ~mode) if mode is not None and _ipc_path(endpoint) else None
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as error:
        raise OSError("cannot bind %s: %s" % (endpoint, error)) from error
    finally:
        if previous is not None:
            os.umask(previous)
    apply_ipc_permissions(endpoint, options)


def apply_ipc_permissions(endpoint, options):
    """chown/chmod an ipc:// socket file per endpoint_owner / endpoint_mode."""
    path = _ipc_path(endpoint)
    if path is None:
        return
    owner = options.get("endpoint_owner")
    if owner not in (None, ""):
        os.chown(path, spawner.resolve_uid(owner), -1)
    mode = parse_mode(options.get("endpoint_mode"))
    if mode is not None:
        os.chmod(path, mode)
