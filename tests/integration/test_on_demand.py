"""on_demand watchers: no process until a client connects; the kernel
wakes the hub through a read watcher on the socket (check_delay is 60 s here, so
no periodic sweep can be what starts them)."""
import time

import gevent
from gevent import socket as green_socket

from gcircus.sockets import CircusSocket
from gcircus.watcher import Watcher
from tests.conftest import child_cmd
from tests.fixtures.http_client import http_get


def on_demand_watcher(lines, *args, **options):
    options.setdefault("min_uptime", 0)
    return Watcher("web", child_cmd("http_worker", "$(circus.sockets.web)", *args), use_sockets=True,
                   on_demand=True, stdout_stream={"stream": lines}, **options)


def test_no_process_until_the_first_connection_which_is_served(run_arbiter, events, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = on_demand_watcher(lines)
    run_arbiter([watcher], sockets=[web])
    assert watcher.is_stopped() and not watcher.processes
    assert events.count("watcher.web.spawn") == 0
    asked = time.monotonic()
    reply = http_get(("127.0.0.1", web.port))
    assert time.monotonic() - asked < 5
    assert watcher.is_active() and list(watcher.processes) == [reply["pid"]]
    assert events.count("watcher.web.spawn") == 1
    # later clients go straight to the running process
    assert http_get(("127.0.0.1", web.port))["pid"] == reply["pid"]
    assert events.count("watcher.web.spawn") == 1


def test_after_its_processes_die_it_waits_for_the_next_connection(run_arbiter, events, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = on_demand_watcher(lines, "--once")
    run_arbiter([watcher], sockets=[web])
    first = http_get(("127.0.0.1", web.port))["pid"]
    events.wait_count("watcher.web.stop", 1)            # --once: the worker exits, nothing respawns
    assert watcher.is_stopped() and not watcher.processes
    second = http_get(("127.0.0.1", web.port))["pid"]
    assert second != first
    assert events.count("watcher.web.spawn") == 2


def test_a_stopped_on_demand_watcher_starts_again_on_connection(run_arbiter, events, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    other = CircusSocket("other", host="127.0.0.1", port=0)
    watcher = on_demand_watcher(lines)
    run_arbiter([watcher], sockets=[web, other])
    first = http_get(("127.0.0.1", web.port))["pid"]
    watcher.stop()
    assert watcher.is_stopped()
    # a socket the watcher does not use wakes nobody
    with green_socket.create_connection(("127.0.0.1", other.port)):
        gevent.sleep(0.2)  # an observation window: nothing may happen during it
    assert watcher.is_stopped() and events.count("watcher.web.spawn") == 1
    assert http_get(("127.0.0.1", web.port))["pid"] != first


def test_a_refused_start_is_retried_later_not_in_a_loop(run_arbiter, events, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    refusals = []

    def before_start(watcher, arbiter, hook_name, **kw):
        refusals.append(time.monotonic())
        return len(refusals) > 1

    watcher = on_demand_watcher(lines, hooks={"before_start": before_start})
    run_arbiter([watcher], sockets=[web])
    reply = http_get(("127.0.0.1", web.port), timeout=10)   # waits in the backlog meanwhile
    assert reply["pid"] in watcher.processes
    assert len(refusals) == 2 and refusals[1] - refusals[0] >= 0.9


def test_arbiter_stop_with_an_armed_watcher(run_arbiter, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = on_demand_watcher(lines)
    arbiter = run_arbiter([watcher], sockets=[web])
    arbiter.stop()
    assert watcher.is_stopped() and not watcher.processes and web.fileno() == -1


def test_a_socket_replaced_live_is_watched_in_place_of_the_old_one(run_arbiter, events, lines):
    web = CircusSocket("web", host="127.0.0.1", port=0)
    watcher = on_demand_watcher(lines)
    arbiter = run_arbiter([watcher], sockets=[web])
    arbiter.sockets.remove("web")              # the read watcher goes before the fd is closed
    replacement = CircusSocket("web", host="127.0.0.1", port=0)
    assert arbiter.sockets.add(replacement)    # bound at once: the arbiter runs
    reply = http_get(("127.0.0.1", replacement.port))
    assert reply["port"] == replacement.port and watcher.is_active()
