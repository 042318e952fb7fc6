"""A worker for examples/event_log.ini: says it is ready, then idles. SIGTERM stops
it; SIGUSR1 makes it exit with code 75, its way to ask for a restart of its whole
watcher (the event_log plugin does that)."""
import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
signal.signal(signal.SIGUSR1, lambda signum, frame: sys.exit(75))
print("worker %d ready" % os.getpid(), flush=True)
while True:
    time.sleep(3600)
