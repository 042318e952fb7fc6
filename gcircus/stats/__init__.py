"""Statistics: the stats stream the arbiter publishes from a
greenlet (publisher), the sampling behind it (collector, socket_reads), and the
client side: StatsClient and gcircus-top (top)."""
