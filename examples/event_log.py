"""An example gcircus plugin: a log of what the daemon does (see docs/writing-a-plugin.md).

It writes one line per event, a summary of every watcher every `summary_every`
seconds, and restarts a whole watcher when one of its processes exits with
`restart_on_exit_code`. Configure it with (examples/event_log.ini):

    [plugin:eventlog]
    use = event_log.EventLog
    path = /tmp/gcircus-events.log
    summary_every = 60
    restart_on_exit_code = 75
"""
import time

from gcircus.plugin import CircusPlugin   # Circus's `from circus.plugins import CircusPlugin` works too


class EventLog(CircusPlugin):
    name = "event_log"

    def __init__(self, endpoint, pubsub_endpoint, check_delay, ssh_server=None, **config):
        super().__init__(endpoint, pubsub_endpoint, check_delay, ssh_server, **config)
        # every option arrives as a string, as written in the [plugin:NAME] section
        self.path = config["path"]
        self.summary_every = float(config.get("summary_every", 60))
        self.restart_code = int(config.get("restart_on_exit_code", 75))
        self.log = None
        self.summaries = None

    def handle_init(self):
        """Before the first event: open the log, ask the daemon what it runs, start the timer."""
        self.log = open(self.path, "a", buffering=1)
        watchers = self.call("list")["watchers"]
        self.write("started, watching %s" % ", ".join(watchers))
        self.summaries = self.periodic(self.summary_every, self.write_summary)

    def handle_recv(self, data):
        """Every event: data is [b'watcher.<name>.<event>', b'<json body>']."""
        watcher, action, body = self.split_data(data)
        message = self.load_message(body)
        if "process_pid" in message:
            detail = " pid %s" % message["process_pid"]
            if action == "reap":
                detail += " exit code %s" % message.get("exit_code")
        else:
            detail = ""
        self.write("%s %s%s" % (watcher, action, detail))
        if action == "reap" and message.get("exit_code") == self.restart_code:
            self.write("restarting %s (a process asked for it)" % watcher)
            self.cast("restart", name=watcher)      # fire and forget: no reply to wait for

    def write_summary(self):
        """Every summary_every seconds: processes, cpu and memory per watcher."""
        reply = self.call("stats")
        if reply["status"] != "ok":
            self.write("stats failed: %s" % reply.get("reason"))
            return
        for name, processes in sorted(reply["infos"].items()):
            if name.startswith("plugin:"):
                continue
            infos = [info for info in processes.values() if isinstance(info, dict)]
            cpu = sum(info["cpu"] for info in infos if info["cpu"] != "N/A")
            mem = sum(info["mem"] for info in infos if info["mem"] != "N/A")
            self.write("summary %s: %d processes, cpu %.1f%%, memory %.2f%%" % (name, len(infos), cpu, mem))

    def handle_stop(self):
        """The plugin is stopping (daemon quit, `gcircusctl stop plugin:eventlog`, reload)."""
        self.summaries.stop()
        self.write("stopped")
        self.log.close()

    def write(self, text):
        self.log.write("%s %s\n" % (time.strftime("%H:%M:%S"), text))
