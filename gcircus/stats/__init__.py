"""Statistics: the stats stream the arbiter publishes from a
greenlet (publisher), the sampling behind it (collector, socket_reads), and the
client side: StatsClient and gcircus-top (top)."""
import logging

from gcircus.converters import to_bool
from gcircus.options import DEFAULT_STATS

logger = logging.getLogger("gcircus")


def stats_endpoint_of(arbiter):
    """The endpoint the arbiter wants stats on, or None: `stats_endpoint`, or the
    default one when only `statsd = true` was given. (Here, not in the publisher: a
    daemon without stats asks this and never loads the rest.)"""
    endpoint = arbiter.stats_endpoint
    if endpoint:
        return endpoint
    try:
        wanted = to_bool(arbiter.options.get("statsd") or False)
    except ValueError:
        logger.warning("statsd = %r is no boolean: stats stay off", arbiter.options.get("statsd"))
        wanted = False
    return DEFAULT_STATS if wanted else None
