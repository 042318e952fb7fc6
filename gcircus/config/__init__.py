"""Circus's INI configuration: load_config (file -> dict, every problem found), the
arbiter built from it (gcircus.config.build) and reloadconfig (gcircus.config.reload)."""
from gcircus.config.loader import check_loaded, load_config
from gcircus.config.parser import ConfigError

__all__ = ["check_loaded", "load_config", "ConfigError"]
