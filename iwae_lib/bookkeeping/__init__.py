"""How the book's runs are made, kept out of the chapters' way: no notebook imports it.

    status      where each run of the catalog stands in results/, and the command that records it
                (``python -m iwae_lib runs``; the book build's check; what ``train_or_load`` says)
    pace        how long a run takes here: seconds per epoch of the same step shape, measured here
    sessions    a recorded run's training hours split by session and machine
    runs_page   the back matter's page "How the runs were made" (book/_generated/runs.md)
"""
