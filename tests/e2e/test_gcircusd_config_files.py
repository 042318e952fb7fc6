"""gcircusd refuses a config path that is not a regular file at once, with one line (it never reads it)."""
import os
import subprocess
import sys


def gcircusd(*args):
    return subprocess.run([sys.executable, "-m", "gcircus.cli.gcircusd", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_gcircusd_on_dev_zero_exits_with_one_line():
    result = gcircusd("/dev/zero")
    assert (result.returncode, result.stderr) == (1, "gcircusd: /dev/zero: not a regular file (a character device)\n")


def test_gcircusd_on_a_fifo_exits_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "gcircus.ini"
    os.mkfifo(fifo)
    result = gcircusd(str(fifo))
    assert (result.returncode, result.stderr) == (1, "gcircusd: %s: not a regular file (a FIFO)\n" % fifo)
