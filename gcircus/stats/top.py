"""The client side of the stats stream: StatsClient (Circus's API) and the
model and screens of gcircus-top.

- StatsClient: a SUB on `stat.` yielding (watcher, subtopic or None, stat).
- TopBoard: what gcircus-top knows, fed message by message; pids silent for
  `process_timeout` are dropped; `lines()` lays it out as circus-top does
  (per watcher: PID / CPU (%) / MEMORY (%) / AGE (s), the ten busiest first,
  then `avg / sum / older`; a sockets section with ADDRESS / HITS).
- CursesScreen and PlainScreen: where the lines go (a live terminal, or plain
  text snapshots when stdout is not a tty).
"""
import json
import time

import zmq

from gcircus import DEFAULT_STATS
from gcircus.client import CircusConsumer

HIDDEN = ("circusd-stats", "circushttpd")   # Circus's own helpers: circus-top hides them too
TOP = 10                                    # processes shown per watcher
COLUMNS = (2, 29, 49, 69)                   # where circus-top puts PID, CPU, MEMORY, AGE


class StatsClient(CircusConsumer):
    """Subscribes to a stats endpoint; iterating yields (watcher, subtopic, stat)."""

    def __init__(self, endpoint=DEFAULT_STATS, ssh_server=None, context=None, timeout=1.0, green=None,
                 **security):
        super().__init__(["stat."], context=context, endpoint=endpoint, ssh_server=ssh_server,
                         timeout=timeout, green=green, **security)

    def iter_messages(self):
        for topic, body in super().iter_messages():
            parsed = parse_stat(topic, body)
            if parsed is not None:
                yield parsed


def parse_stat(topic, body):
    """(watcher, subtopic or None, stat dict) of one message; None if it is not a stat."""
    parts = topic.decode("utf-8", "replace").split(".")
    try:
        stat = json.loads(body)
    except ValueError:
        return None
    if len(parts) == 3:
        return parts[1], parts[2], stat
    if len(parts) == 2:
        return parts[1], None, stat
    return None


def _number(value, suffix=""):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "%.2f%s" % (value, suffix)
    return "N/A%s" % suffix


def _place(cells, width):
    """One line with cells at circus-top's columns, cut to width."""
    line = ""
    for column, cell in zip(COLUMNS, cells):
        line = line.ljust(column) + cell + " "
    return line.rstrip()[:max(width - 1, 0)]


class TopBoard:
    """The latest stats per watcher and pid (or fd), as gcircus-top shows them."""

    def __init__(self, process_timeout=3.0):
        self.process_timeout = float(process_timeout)
        self.watchers = {}      # watcher -> {subtopic or 'all': stat}
        self._seen = {}         # (watcher, subtopic) -> monotonic time of its last message

    def update(self, watcher, subtopic, stat, now=None):
        now = time.monotonic() if now is None else now
        key = "all" if subtopic is None else subtopic
        self.watchers.setdefault(watcher, {})[key] = stat
        self._seen[(watcher, key)] = now

    def expire(self, now=None):
        """Forget pids and sockets (and whole watchers) not heard of for process_timeout."""
        now = time.monotonic() if now is None else now
        for (watcher, key), seen in list(self._seen.items()):
            if now - seen > self.process_timeout:
                del self._seen[(watcher, key)]
                self.watchers.get(watcher, {}).pop(key, None)
                if not self.watchers.get(watcher):
                    self.watchers.pop(watcher, None)

    @property
    def empty(self):
        return not self.watchers

    def lines(self, width=80):
        if self.empty:
            return ["", "*** Waiting for data ***"]
        lines = ["gcircus top", "-" * (width - 1)]
        for name in sorted(self.watchers):
            if name in HIDDEN:
                continue
            lines.append(name)
            section = self.watchers[name]
            lines.extend(self._socket_lines(section, width) if name == "sockets"
                         else self._process_lines(section, width))
            lines.append("")
        lines.append("-" * (width - 1))
        return lines

    @staticmethod
    def _process_lines(section, width):
        lines = [_place(["PID", "CPU (%)", "MEMORY (%)", "AGE (s)"], width)]
        processes = [stat for key, stat in section.items() if key != "all" and isinstance(stat, dict)]
        processes.sort(key=lambda stat: stat.get("cpu") if isinstance(stat.get("cpu"), (int, float)) else -1,
                       reverse=True)
        for stat in processes[:TOP]:
            pid = str(stat.get("pid", "?"))
            if stat.get("name"):
                pid = "%s (%s)" % (pid, stat["name"])
            lines.append(_place([pid, _number(stat.get("cpu")), _number(stat.get("mem")),
                                 _number(stat.get("age"))], width))
        total = section.get("all")
        if total is not None:
            lines.append(_place(["", _number(total.get("cpu"), " (avg)"), _number(total.get("mem"), " (sum)"),
                                 _number(total.get("age"), " (older)")], width))
        return lines

    @staticmethod
    def _socket_lines(section, width):
        lines = [_place(["ADDRESS", "HITS"], width)]
        sockets = [stat for key, stat in section.items() if key != "all"]
        for stat in sorted(sockets, key=lambda s: s.get("reads", 0), reverse=True):
            lines.append(_place([str(stat.get("address")), "%3d" % stat.get("reads", 0)], width))
        total = section.get("all") or {}
        lines.append(_place(["", "%3d (sum)" % total.get("reads", 0)], width))
        return lines


class PlainScreen:
    """Snapshots as plain text, for pipes and files."""

    def __init__(self, out, width=100):
        self.out = out
        self.width = width

    def paint(self, board):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.out.write("== %s ==\n%s\n\n" % (stamp, "\n".join(board.lines(self.width))))
        self.out.flush()

    def key(self):
        return None

    def close(self):
        pass


class CursesScreen:
    """The live terminal view; `q` quits."""

    def __init__(self):
        import curses
        self.curses = curses
        self.screen = curses.initscr()
        curses.noecho()
        curses.cbreak()
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        self.screen.nodelay(True)

    def paint(self, board):
        height, width = self.screen.getmaxyx()
        self.screen.erase()
        for row, line in enumerate(board.lines(width)[:height]):
            try:
                self.screen.addstr(row, 0, line[:max(width - 1, 0)])
            except self.curses.error:
                pass   # the terminal shrank under us; the next paint fits again
        self.screen.refresh()

    def key(self):
        code = self.screen.getch()
        return None if code < 0 else chr(code) if code < 256 else None

    def close(self):
        self.curses.nocbreak()
        self.curses.echo()
        self.curses.endwin()


def run_top(client, screen, board, refresh=1.0, iterations=None, key_fd=None, first_paint=0.0):
    """Feed board from client and paint it every `refresh` seconds, the first time
    after `first_paint` seconds, until `q` (or `iterations` paints). Blocking; no
    threads: one zmq poll waits for stats, keys and the next paint."""
    socket = client._get_socket()
    poller = zmq.Poller()
    poller.register(socket, zmq.POLLIN)
    if key_fd is not None:
        poller.register(key_fd, zmq.POLLIN)
    painted = 0
    next_paint = time.monotonic() + first_paint
    while iterations is None or painted < iterations:
        timeout = max(0.0, next_paint - time.monotonic())
        ready = dict(poller.poll(timeout * 1000))
        if socket in ready:
            while socket.poll(0):
                parsed = parse_stat(*socket.recv_multipart()[:2])
                if parsed is not None:
                    board.update(*parsed)
        if key_fd is not None and key_fd in ready and screen.key() in ("q", "Q"):
            return painted
        if time.monotonic() >= next_paint:
            board.expire()
            screen.paint(board)
            painted += 1
            next_paint += refresh
            next_paint = max(next_paint, time.monotonic())
    return painted
