"""Splitting a recorded run's training time by session."""

import pytest

from iwae_lib.bookkeeping import sessions
from iwae_lib.config import TrainConfig

CONFIG = TrainConfig(k=5, train_size=2000, batch_size=20, schedule="constant", epochs=6, eval_every=0)  # 100 steps per epoch
XEON = {"cpu": "Xeon", "git_revision": "a" * 40, "speed_settings": {}}
EPYC = {"cpu": "EPYC", "git_revision": "b" * 40 + "+dirty", "speed_settings": {"TF_ENABLE_ONEDNN_OPTS": "0"}}


def metrics_with(durations, training_sessions):
    total, history = 0.0, []
    for epoch, seconds in enumerate(durations, 1):
        total += seconds
        history.append({"epoch": epoch, "train_seconds": total})
    return {"config": CONFIG.to_dict(), "history": history,
            "training_sessions": training_sessions}


def test_each_session_gets_its_epochs_hours_and_pace():
    # epochs 1-3 on one machine (the third slowed by other work), 4-6 on another; an empty
    # session (interrupted within epoch 4) in between has no row
    metrics = metrics_with([10.0, 10.0, 40.0, 5.0, 5.0, 6.0],
                           [{"from_epoch": 0, "environment": XEON}, {"from_epoch": 3, "environment": XEON},
                            {"from_epoch": 3, "environment": EPYC}])
    first, second = sessions.session_rows(metrics)
    assert (first["session"], first["cpu"], first["epochs"], first["revision"]) == (1, "Xeon", "1-3", "aaaaaaa")
    assert first["hours"] == pytest.approx(60.0 / 3600)
    assert first["steps/s"] == pytest.approx(300 / 60.0)
    assert first["steps/s at pace"] == pytest.approx(100 / 10.0)  # the slowed epoch does not set the pace
    assert second["session"] == 3  # numbered as recorded
    assert (second["epochs"], second["revision"], second["speed_settings"]) == ("4-6", "bbbbbbb+dirty",
                                                                              "TF_ENABLE_ONEDNN_OPTS=0")
    assert second["hours"] == pytest.approx(16.0 / 3600)
    assert second["steps/s at pace"] == pytest.approx(100 / 5.0)
    assert sessions.hours_at_pace(metrics) == pytest.approx((3 * 10.0 + 3 * 5.0) / 3600)  # recorded: 76 s


def test_epochs_from_before_sessions_were_recorded_form_a_first_row():
    metrics = metrics_with([10.0, 10.0, 20.0, 20.0], [{"from_epoch": 2, "environment": EPYC}])
    rows = sessions.session_rows(metrics)
    assert [(r["session"], r["cpu"], r["epochs"]) for r in rows] == [(1, "not recorded", "1-2"), (2, "EPYC", "3-4")]
    assert rows[1]["hours"] == pytest.approx(40.0 / 3600)
    table = sessions.session_table(metrics)
    assert list(table.index) == [1, 2] and table.loc[2, "steps/s"] == pytest.approx(5.0)
