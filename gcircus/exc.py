"""Exceptions raised by the gcircus library; the controller maps them to wire errnos."""


class CircusError(Exception):
    """Base class of every gcircus error."""


class ArgumentError(CircusError, ValueError):
    """A command or option got a value it cannot use."""


class MessageError(CircusError):
    """A wire message is malformed."""


class ConflictError(CircusError):
    """The operation conflicts with the current state (e.g. a watcher name already in use)."""


class CallError(CircusError):
    """A client call failed (timeout, transport error)."""


class SpawnError(CircusError, OSError):
    """A process could not be created: the message says which command and why."""
