"""Learning-rate schedules: the paper's 3280-epoch schedule, the same stages scaled to
another epoch budget, a constant rate, and a warm-up followed by a linear decay.

Burda et al. train for sum_{i=0}^{7} 3^i = 3280 epochs; stage i lasts 3^i epochs at
learning rate 1e-3 * 10^(-i/7).

A schedule is a list of stages (n_epochs, rate). The staged schedules hold the rate
constant within a stage. ``linear_decay`` is one stage whose rate is the peak, shaped
within it by :func:`rate_at`: a linear warm-up from 0 over ``warmup_epochs``, then a
linear decay to 0 at the last step (the shape that Defazio et al., 2023, "When, why and
how much? Adaptive learning rate scheduling by refinement", find hard to beat; a decay to
zero also ends training at the rate at which the bound's noise is averaged out).
"""

import numpy as np

SCHEDULES = ("paper", "scaled", "constant", "linear_decay")
PAPER_STAGES = 8
PAPER_EPOCHS = sum(3**i for i in range(PAPER_STAGES))  # 3280


def paper_stage_rate(stage: int, base_rate: float = 1e-3) -> float:
    """Learning rate of stage i: base_rate * 10^(-i/7)."""
    return base_rate * 10.0 ** (-stage / 7.0)


def stages(schedule: str, epochs: int | None = None, learning_rate: float = 1e-3) -> list:
    """The schedule as a list of (n_epochs, learning_rate) stages.

    ``paper``: the 8 stages of 3^i epochs (``epochs`` must be None or 3280).
    ``scaled``: the same 8 rates with stage lengths proportional to 3^i, rounded so that
        they sum to ``epochs`` (largest-remainder rounding; every stage keeps at least one
        epoch, so ``epochs`` >= 8).
    ``constant``: one stage of ``epochs`` at ``learning_rate``.
    ``linear_decay``: one stage of ``epochs`` whose peak rate is ``learning_rate`` (the
        rate of each step is :func:`rate_at`).
    """
    if schedule == "paper":
        if epochs not in (None, PAPER_EPOCHS):
            raise ValueError(f"the paper schedule is {PAPER_EPOCHS} epochs; use --schedule scaled for {epochs}")
        return [(3**i, paper_stage_rate(i, learning_rate)) for i in range(PAPER_STAGES)]
    if epochs is None or int(epochs) != epochs or epochs < 1:
        raise ValueError(f"the {schedule!r} schedule needs a positive whole number of epochs, got {epochs}")
    if schedule in ("constant", "linear_decay"):
        return [(int(epochs), learning_rate)]
    if schedule == "scaled":
        if epochs < PAPER_STAGES:
            raise ValueError(f"the scaled schedule has {PAPER_STAGES} stages, so it needs >= {PAPER_STAGES} epochs")
        lengths = scaled_stage_lengths(int(epochs))
        return [(n, paper_stage_rate(i, learning_rate)) for i, n in enumerate(lengths)]
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def scaled_stage_lengths(epochs: int) -> list:
    """Stage lengths proportional to 3^i summing to ``epochs``, each at least 1."""
    spare = epochs - PAPER_STAGES  # one epoch per stage first, the rest in proportion
    exact = np.array([3.0**i for i in range(PAPER_STAGES)]) * spare / PAPER_EPOCHS
    lengths = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - lengths), kind="stable")[: spare - lengths.sum()]:
        lengths[i] += 1
    return [int(n) + 1 for n in lengths]


def epoch_rates(stage_list: list) -> list:
    """One learning rate per epoch, and the stage index of each epoch: [(rate, stage)]."""
    return [(rate, s) for s, (n, rate) in enumerate(stage_list) for _ in range(n)]


def rate_at(schedule: str, stage_rate: float, progress: float, total_epochs: int,
            warmup_epochs: float = 0.0) -> float:
    """The learning rate at a point of training.

    Args:
        schedule: one of SCHEDULES.
        stage_rate: the rate of the current stage (for ``linear_decay``: the peak).
        progress: epochs done so far, fractional (e.g. 3.5 = halfway through epoch 4);
            the training loop passes the middle of each compiled call's steps.
        total_epochs: the schedule's length in epochs.
        warmup_epochs: ``linear_decay`` only: epochs of linear warm-up from 0 to the peak.

    Staged schedules return ``stage_rate`` unchanged. ``linear_decay`` returns
    ``stage_rate * min(1, progress / warmup_epochs) * (1 - progress / total_epochs)``,
    never below 0.
    """
    if schedule != "linear_decay":
        return stage_rate
    warm = 1.0 if warmup_epochs <= 0 else min(1.0, progress / warmup_epochs)
    return stage_rate * warm * max(0.0, 1.0 - progress / total_epochs)
