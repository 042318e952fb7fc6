"""The restart backoff, written once: a watcher's crash loop and a hosted plugin that keeps
failing wait the same way (like Kubernetes' CrashLoopBackOff, with a shorter start).

A first failure is retried at once (one crash is just replaced); each further failure in a
row doubles the wait, from `base` up to `maximum`. Whoever counts the streak resets it once
the thing has run for its min_uptime.
"""


def backoff_delay(streak, base, maximum):
    """Seconds to wait before the next try after `streak` failures in a row."""
    if streak <= 1:
        return 0.0
    return min(base * 2 ** (streak - 2), maximum)
