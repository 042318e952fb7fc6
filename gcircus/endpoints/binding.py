"""Binding the daemon's zmq endpoints; ipc:// endpoints get `endpoint_owner` (chown) and
`endpoint_mode` (octal mode, also applied as the umask while binding, so the socket file
is never open to others, even briefly), and their socket files are removed on close."""
import logging
import os

import zmq

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


def parse_mode(value):
    """An ipc socket mode from 0o600, 384 or '0600' / '600' (always octal as text)."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    return int(str(value), 8)


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
