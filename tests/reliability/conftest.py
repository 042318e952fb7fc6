"""Fault, load and fuzz cases: real gcircusd daemons, real children, bounded in time.

Cases marked `slow` (the long variants of a short default case) run only with
`--slow` (an option of tests/conftest.py; CI runs them in a separate step: `python -m pytest -q --slow -m slow tests/reliability`).
"""
import pytest

# the same real-daemon fixtures as the end-to-end tests
from tests.e2e.conftest import daemons, gcircusd, workdir  # noqa: F401


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="long reliability case: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
