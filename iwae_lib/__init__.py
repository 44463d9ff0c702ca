"""iwae_lib: Importance Weighted Autoencoders (Burda, Grosse & Salakhutdinov, 2015).

A small library of pure functions behind the iwae-book: data, models, objectives and
gradient estimators, training with exact resume, evaluation and posterior tools.
"""

from iwae_lib._quiet import import_tensorflow_quietly

import_tensorflow_quietly()

__version__ = "0.1.0"
