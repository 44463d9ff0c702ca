"""Learning-rate schedules: the paper's 3280-epoch schedule, the same stages scaled to
another epoch budget, and a constant rate.

Burda et al. train for sum_{i=0}^{7} 3^i = 3280 epochs; stage i lasts 3^i epochs at
learning rate 1e-3 * 10^(-i/7).
"""

import numpy as np

SCHEDULES = ("paper", "scaled", "constant")
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
    """
    if schedule == "paper":
        if epochs not in (None, PAPER_EPOCHS):
            raise ValueError(f"the paper schedule is {PAPER_EPOCHS} epochs; use --schedule scaled for {epochs}")
        return [(3**i, paper_stage_rate(i, learning_rate)) for i in range(PAPER_STAGES)]
    if epochs is None or int(epochs) != epochs or epochs < 1:
        raise ValueError(f"the {schedule!r} schedule needs a positive whole number of epochs, got {epochs}")
    if schedule == "constant":
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
