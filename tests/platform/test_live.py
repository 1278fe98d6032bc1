"""The live publisher on its own (no Redis): coalescing to the rate, every point carried once,
and points kept while the channel layer is away."""

from __future__ import annotations

import pytest

from webapp.runs import live

pytestmark = pytest.mark.xdist_group("platform")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sent(monkeypatch):
    """The messages ``send_to_run`` was given; set ``sent.up = False`` to make sending fail."""

    class Sent(list):
        up = True

    messages = Sent()

    def send(run_id, message):
        if not messages.up:
            return False
        messages.append((run_id, message))
        return True

    monkeypatch.setattr(live, "send_to_run", send)
    return messages


def points(first: int, last: int) -> list[dict]:
    return [live.point_message(sequence=s, name="loss", step=s, epoch=s / 10, value=1.0 / s, wall_time=float(s))
            for s in range(first, last + 1)]


def test_points_are_coalesced_to_the_rate_and_each_message_carries_all_since_the_last(sent):
    clock = Clock()
    publisher = live.RunPublisher(7, max_messages_per_second=4, clock=clock)
    publisher.add(points(1, 3))
    assert publisher.publish_due()
    publisher.add(points(4, 5))
    clock.now += 0.125
    assert not publisher.publish_due()  # an eighth of a second after the last message: too soon
    publisher.add(points(6, 9))
    clock.now += 0.125
    assert publisher.publish_due()
    assert [message["type"] for _, message in sent] == ["run.points", "run.points"]
    assert [[p["seq"] for p in message["points"]] for _, message in sent] == [[1, 2, 3], [4, 5, 6, 7, 8, 9]]
    assert all(run_id == 7 for run_id, _ in sent)


def test_points_wait_while_the_channel_layer_is_away_and_go_out_together_after(sent):
    clock = Clock()
    publisher = live.RunPublisher(7, max_messages_per_second=10, clock=clock)
    sent.up = False
    publisher.add(points(1, 2))
    assert not publisher.publish_due()
    clock.now += 0.5
    publisher.add(points(3, 4))
    assert not publisher.publish_due()  # still within the retry pause after a failure
    sent.up = True
    clock.now += live.RETRY_AFTER_SECONDS
    assert publisher.publish_due()
    assert [p["seq"] for p in sent[0][1]["points"]] == [1, 2, 3, 4]
    assert publisher.unsent == []


def test_the_state_message_follows_the_last_points(sent, monkeypatch):
    monkeypatch.setattr(live.time, "sleep", lambda seconds: None)

    class Run:
        pk, state, epochs_completed, error, final_metrics, last_sequence = 7, "succeeded", 3, "", {"loss": 0.1}, 2

    publisher = live.RunPublisher(7, max_messages_per_second=10, clock=Clock())
    publisher.add(points(1, 2))
    assert publisher.publish_state(Run())
    assert [message["type"] for _, message in sent] == ["run.points", "run.state"]
    assert sent[1][1] == {"type": "run.state", "run": 7, "state": "succeeded", "epochs_completed": 3,
                          "last_sequence": 2, "final_metrics": {"loss": 0.1}}
