"""The daemon's open-files limit: raised at start so thousands of children fit.

Each child whose output is captured costs the daemon two pipe fds (stdout and stderr),
and distributions still start services with a soft RLIMIT_NOFILE of 1024: without
raising it, the 500th such child fails to spawn with EMFILE. The soft limit goes up
toward the hard limit, but no further than MAX_SOFT unless the configuration needs more:
children inherit it, and some programs close every fd up to it when they start (a
million would cost them seconds).
"""
import logging
import resource

logger = logging.getLogger("gcircus")

MAX_SOFT = 65536
BASE_FDS = 256          # the daemon's own: zmq, the event loop, sockets, log files, plugins


def fds_needed(watchers):
    """A generous estimate of the fds the daemon holds once every watcher runs its processes."""
    needed = BASE_FDS
    for watcher in watchers:
        pipes = (watcher.streams.stdout is not None) + (watcher.streams.stderr is not None)
        needed += watcher.numprocesses * (pipes + 1)     # +1: a handle while the process is stopped
    return needed


def raise_open_files_limit(needed):
    """Raise the soft RLIMIT_NOFILE for `needed` fds (and some room); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, MAX_SOFT, 2 * needed)
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as error:
            logger.warning("cannot raise the open files limit from %d to %d: %s", soft, target, error)
        else:
            logger.info("open files limit raised from %d to %d (hard limit %s); children inherit it",
                        soft, target, _text(hard))
            soft = target
    if soft < needed:
        logger.warning("the open files limit is %d (hard limit %s) but this configuration may need %d "
                       "file descriptors: spawns will fail with 'Too many open files' past it; raise the "
                       "hard limit (ulimit -Hn, systemd LimitNOFILE=)", soft, _text(hard), needed)
    return soft


def _text(limit):
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
