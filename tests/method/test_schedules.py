"""Learning-rate schedules: the paper's 3280 epochs, the scaled version, constant."""

import math

import numpy as np
import pytest

from iwae_lib import schedules


def test_paper_schedule_is_eight_stages_of_three_to_the_i_epochs():
    stage_list = schedules.stages("paper")
    assert [n for n, _ in stage_list] == [1, 3, 9, 27, 81, 243, 729, 2187]
    assert sum(n for n, _ in stage_list) == 3280 == schedules.PAPER_EPOCHS
    for i, (_, rate) in enumerate(stage_list):
        assert rate == pytest.approx(1e-3 * 10 ** (-i / 7), rel=1e-12)
    # stage 7 runs one decade below the first
    assert stage_list[-1][1] == pytest.approx(1e-3 * 10 ** (-1.0), rel=1e-12)
    assert schedules.stages("paper", 3280) == stage_list


def test_paper_schedule_scales_with_the_base_rate():
    rates = [r for _, r in schedules.stages("paper", learning_rate=3e-4)]
    np.testing.assert_allclose(rates, [3e-4 * 10 ** (-i / 7) for i in range(8)], rtol=1e-12)


@pytest.mark.parametrize("epochs", [8, 9, 10, 11, 17, 24, 40, 100, 328, 329, 1000, 1093, 3280, 3333, 5000])
def test_scaled_schedule_sums_to_the_budget_and_is_proportional_to_three_to_the_i(epochs):
    stage_list = schedules.stages("scaled", epochs)
    lengths = [n for n, _ in stage_list]
    assert len(lengths) == 8
    assert sum(lengths) == epochs
    assert all(isinstance(n, int) and n >= 1 for n in lengths)
    assert lengths == sorted(lengths), "stage lengths must not decrease"
    # one guaranteed epoch per stage, the remaining epochs - 8 split in proportion to 3^i
    spare = epochs - 8
    exact = np.array([3.0**i for i in range(8)]) * spare / 3280
    assert np.all(np.abs((np.array(lengths) - 1) - exact) < 1.0)
    for i, (_, rate) in enumerate(stage_list):
        assert rate == pytest.approx(1e-3 * 10 ** (-i / 7), rel=1e-12)


def test_scaled_schedule_of_3288_epochs_is_the_paper_schedule_plus_one_epoch_per_stage():
    assert schedules.scaled_stage_lengths(3288) == [3**i + 1 for i in range(8)]
    assert schedules.scaled_stage_lengths(8) == [1] * 8


def test_scaled_stage_lengths_for_every_budget_up_to_600():
    for epochs in range(8, 601):
        lengths = schedules.scaled_stage_lengths(epochs)
        assert sum(lengths) == epochs and min(lengths) >= 1 and lengths == sorted(lengths), epochs


def test_constant_schedule_is_one_stage():
    assert schedules.stages("constant", 7, 2e-3) == [(7, 2e-3)]
    assert schedules.epoch_rates(schedules.stages("constant", 3, 5e-4)) == [(5e-4, 0)] * 3


@pytest.mark.parametrize("schedule, epochs, match", [
    ("paper", 100, "3280"),
    ("scaled", 7, ">= 8"),
    ("scaled", None, "positive whole number"),
    ("scaled", 10.5, "positive whole number"),
    ("constant", 0, "positive whole number"),
    ("constant", -3, "positive whole number"),
    ("cosine", 10, "unknown schedule"),
])
def test_invalid_schedules_raise_value_error(schedule, epochs, match):
    with pytest.raises(ValueError, match=match):
        schedules.stages(schedule, epochs)


def test_epoch_rates_lists_one_rate_per_epoch_in_stage_order():
    stage_list = schedules.stages("scaled", 20)
    rates = schedules.epoch_rates(stage_list)
    assert len(rates) == 20
    assert [s for _, s in rates] == sorted(s for _, s in rates)
    assert [sum(1 for _, s in rates if s == i) for i in range(8)] == [n for n, _ in stage_list]
    lr = [r for r, _ in rates]
    assert all(a >= b for a, b in zip(lr, lr[1:])), "rates never increase"
    assert lr[0] == pytest.approx(1e-3) and lr[-1] == pytest.approx(1e-3 * 10 ** (-1.0))
    paper = schedules.epoch_rates(schedules.stages("paper"))
    assert len(paper) == 3280
    assert paper[0] == (pytest.approx(1e-3), 0) and paper[1][1] == 1 and paper[4][1] == 2
    assert paper[-1][1] == 7 and math.isclose(paper[-1][0], 1e-4)


def test_linear_decay_warms_up_then_decays_linearly_to_zero():
    assert schedules.stages("linear_decay", 100, 3e-3) == [(100, 3e-3)]
    rate = lambda p: schedules.rate_at("linear_decay", 3e-3, p, 100, warmup_epochs=2.0)  # noqa: E731
    assert rate(0.0) == 0.0
    assert rate(1.0) == pytest.approx(3e-3 * 0.5 * 0.99)
    assert rate(2.0) == pytest.approx(3e-3 * 0.98)  # the peak, less the decay so far
    assert rate(50.0) == pytest.approx(1.5e-3)
    assert rate(100.0) == 0.0
    rates = [rate(p) for p in np.linspace(2.0, 100.0, 50)]
    np.testing.assert_allclose(np.diff(rates), np.diff(rates)[0], rtol=1e-9)  # a straight line after warm-up
    assert schedules.rate_at("linear_decay", 1e-3, 10.0, 100) == pytest.approx(0.9e-3)  # no warm-up


@pytest.mark.parametrize("schedule", ["paper", "scaled", "constant"])
def test_staged_schedules_keep_the_stage_rate_within_an_epoch(schedule):
    for progress in (0.0, 0.3, 7.9):
        assert schedules.rate_at(schedule, 4e-4, progress, 3280, warmup_epochs=0.0) == 4e-4
