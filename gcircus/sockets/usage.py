"""Which sockets a watcher uses, and the `listsockets` view: pure functions over socket
objects, shared by the socket manager and the on_demand starter."""


def describe_sockets(sockets):
    """listsockets: [{fd, name, backlog, host, port} or {fd, name, backlog, path}] by fd.

    `sockets` is the arbiter's mapping (or any iterable of CircusSocket). A socket
    that failed to bind is listed with fd -1.
    """
    if hasattr(sockets, "values"):
        sockets = sockets.values()
    described = []
    for sock in sockets:
        entry = {"fd": sock.fileno(), "name": sock.name, "backlog": sock.backlog}
        if sock.is_unix:
            entry["path"] = sock.path
        else:
            entry["host"], entry["port"] = sock.host, sock.port
        described.append(entry)
    return sorted(described, key=lambda entry: entry["fd"])


def _mentions(text, name):
    text = " ".join(text) if isinstance(text, (list, tuple)) else str(text or "")
    return ("circus.sockets.%s" % name.lower()) in text.lower()


def sockets_used_by(watcher, sockets):
    """Names of the sockets a watcher names in cmd/args (`$(circus.sockets.NAME)`) or stdin_socket."""
    names = [name for name in sockets
             if _mentions(watcher.cmd, name) or _mentions(watcher.args, name)]
    stdin = watcher.stdin_socket
    if stdin and stdin in sockets and stdin not in names:
        names.append(stdin)
    return names
