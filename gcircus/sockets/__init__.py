"""Listening sockets the arbiter holds for its watchers: CircusSocket (Circus's
`circus.sockets.CircusSocket`), the arbiter's SocketManager, the per-spawn
ProcessSockets, and the on_demand starter."""
from gcircus.sockets.circus_socket import CircusSocket, socket_error
from gcircus.sockets.manager import ProcessSockets, SocketManager
from gcircus.sockets.usage import describe_sockets, sockets_used_by

__all__ = ["CircusSocket", "SocketManager", "ProcessSockets", "describe_sockets", "sockets_used_by",
           "socket_error"]
