"""The plugins gcircus ships, installed as `gcircus.plugins` (Circus's
`circus.plugins.X` names in a config resolve here). Each one uses only the
public plugin API, exactly as a third-party plugin would.

`CircusPlugin` is re-exported so that Circus-style imports work:
`from gcircus.plugins import CircusPlugin`.
"""
from gcircus.plugin import CircusPlugin  # noqa: F401

__all__ = ["CircusPlugin"]
