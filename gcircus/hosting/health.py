"""Is the daemon healthy? The one answer `gcircusctl health` gives (and an HTTP /healthz may
give), for container HEALTHCHECKs and Kubernetes probes.

The daemon is healthy when it serves (started, not stopping) and every watcher is either
running as configured or stopped because someone asked. A watcher is unhealthy when
- it gave up: stopped for good without being asked (max_retry failed spawns in a row, or
  a supervising plugin such as Flapping giving up), or
- it is active but backing off: its processes die younger than min_uptime or fail to
  spawn, and the next respawn waits for the backoff (one crash is replaced at once and
  does not count; a crash loop does).
A watcher stopped by a command, one with autostart = false, or an on_demand watcher
waiting for its first connection is healthy: nothing is wrong with it.
"""


def watcher_problem(watcher):
    """Why one watcher is unhealthy, or None when it is healthy."""
    if watcher.gave_up:
        return "gave up: %s" % watcher.gave_up
    backoff = watcher.backoff() if watcher.is_active() else None
    if backoff is not None:
        return "backing off, next try in %.3g s (%d of %d processes running)" % (
            backoff["retry_in"], len(watcher.get_active_processes()), watcher.numprocesses)
    return None


def health(arbiter):
    """{"healthy": bool, "problems": [text], "watchers": {name: "ok" or the problem}}."""
    problems = []
    if arbiter.stopping:
        problems.append("the daemon is stopping")
    elif not arbiter.started.is_set():
        problems.append("the daemon is starting")
    watchers = {}
    for watcher in list(arbiter.watchers):
        problem = watcher_problem(watcher)
        watchers[watcher.name] = problem or "ok"
        if problem:
            problems.append("%s: %s" % (watcher.name, problem))
    return {"healthy": not problems, "problems": problems, "watchers": watchers}
