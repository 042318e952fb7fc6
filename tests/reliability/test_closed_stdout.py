"""A child that closes its stdout early: its stdout pump ends at that EOF while the process lives on; its stderr
keeps flowing, its exit is reaped as usual, and a watcher replacing such children over and over leaks no file
descriptor."""
import os

from gcircus.watcher import Watcher
from tests.conftest import LineStream, child_cmd

CYCLES = 30


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_a_child_living_on_after_closing_stdout_is_served_and_stopped(run_arbiter):
    out, err = LineStream(), LineStream()
    watcher = Watcher("closer", child_cmd("closes_stdout"), stdout_stream={"stream": out},
                      stderr_stream={"stream": err})
    run_arbiter([watcher])
    err.wait_for("after")
    pid = err.pids("after")[0]
    assert out.pids("before") == [pid]
    assert list(watcher.processes) == [pid]         # still running: an early EOF is not an exit
    watcher.stop()
    assert watcher.processes == {}


def test_children_closing_stdout_and_exiting_are_replaced_without_leaking(run_arbiter, events):
    out, err = LineStream(), LineStream()
    watcher = Watcher("closer", child_cmd("closes_stdout", "--exit"), min_uptime=0, stdout_stream={"stream": out},
                      stderr_stream={"stream": err})
    before = open_fds()
    run_arbiter([watcher])
    events.wait_count("watcher.closer.reap", CYCLES, timeout=60)
    watcher.stop()
    assert watcher.streams.drain(eof_timeout=5, delivery_timeout=5) == []   # the last pipes are read to the end
    # every child that ran to its end (not the one the stop may have killed while it started) got both words out
    reaped = {message["process_pid"] for topic, message in events.events
              if topic == "watcher.closer.reap" and message["exit_code"] == 0}
    assert len(reaped) >= CYCLES - 1
    assert reaped <= set(out.pids("before")) and reaped <= set(err.pids("after"))
    assert open_fds() == before
