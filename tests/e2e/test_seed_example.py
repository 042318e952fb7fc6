"""The seed document's example, as printed there with gcircus in place of circus, really runs:
three `myprogram` processes until the program gets SIGTERM. `myprogram` is the script written
here, named by its path: children get an empty environment (Circus's default, copy_env off),
so a bare name is looked up in the default PATH only, as Circus does."""
import os
import signal
import subprocess
import sys
import time

import psutil

SEED_EXAMPLE = '''\
from gcircus import get_arbiter

arbiter = get_arbiter("MYPROGRAM", numprocesses=3)
try:
    arbiter.start()
finally:
    arbiter.stop()
'''


def test_seed_example_runs_as_written(workdir):
    program = os.path.join(workdir, "myprogram")
    with open(program, "w") as handle:
        handle.write("#!/bin/sh\nexec sleep 120\n")
    os.chmod(program, 0o755)
    app = subprocess.Popen([sys.executable, "-c", SEED_EXAMPLE.replace("MYPROGRAM", program)], cwd=workdir,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        children = []
        while len(children) < 3 and time.monotonic() < deadline and app.poll() is None:
            time.sleep(0.02)     # the children's exec has no event we can wait on from here
            children = [c for c in psutil.Process(app.pid).children() if c.name() == "sleep"]
        assert len(children) == 3, app.stdout.read1().decode() if app.poll() is not None else children
        app.send_signal(signal.SIGTERM)
        assert app.wait(30) == 0
        gone, alive = psutil.wait_procs(children, 5)
        assert not alive
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
