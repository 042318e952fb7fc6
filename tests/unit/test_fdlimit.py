"""The daemon's open-files limit: raised toward the hard limit at start, a clear warning when the hard limit is
too low. Each case runs in a child process whose limits are set first, so the test run's own stay as they are."""
import resource
import subprocess
import sys

import pytest

SCRIPT = """
import logging, resource, sys
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
from gcircus.supervision.fdlimit import raise_open_files_limit
print("soft", raise_open_files_limit(int(sys.argv[3])), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""

HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def run(soft, hard, needed):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(soft), str(hard), str(needed)],
                            capture_output=True, text=True, timeout=30, check=True)
    return result.stdout


@pytest.mark.skipif(HARD != resource.RLIM_INFINITY and HARD < 4096, reason="hard open-files limit below 4096")
def test_soft_limit_is_raised_to_the_hard_limit_when_it_is_lower_than_the_cap():
    out = run(256, 4096, 1000)
    assert "soft 4096 4096" in out
    assert "INFO open files limit raised from 256 to 4096 (hard limit 4096)" in out
    assert "WARNING" not in out


def test_a_hard_limit_below_the_need_is_said_plainly():
    out = run(128, 512, 3000)
    assert "soft 512 512" in out
    assert ("WARNING the open files limit is 512 (hard limit 512) but this configuration may need 3000 "
            "file descriptors") in out


def test_a_limit_high_enough_is_left_alone():
    out = run(512, 512, 100)
    assert "soft 512 512" in out
    assert "raised" not in out and "WARNING" not in out
