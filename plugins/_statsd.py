"""Circus's old module name for the statsd emitter (`circus.plugins._statsd.StatsdEmitter`)."""
from gcircus.plugins.statsd import StatsdEmitter

__all__ = ["StatsdEmitter"]
