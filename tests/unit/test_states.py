"""The watcher state table: the legal moves, and refusal of the rest."""
import pytest

from gcircus.states import ALLOWED_TRANSITIONS, IllegalTransition, WatcherState, check_transition

S = WatcherState


def test_wire_spelling():
    assert [str(s) for s in S] == ["stopped", "starting", "active", "stopping"]


@pytest.mark.parametrize("current,target", sorted(ALLOWED_TRANSITIONS))
def test_allowed(current, target):
    check_transition(current, target)


@pytest.mark.parametrize("current,target", [
    (S.STOPPED, S.ACTIVE), (S.STOPPED, S.STOPPING), (S.STOPPING, S.ACTIVE),
    (S.STOPPING, S.STARTING), (S.ACTIVE, S.STARTING), (S.STOPPED, S.STOPPED)])
def test_refused(current, target):
    with pytest.raises(IllegalTransition):
        check_transition(current, target)
