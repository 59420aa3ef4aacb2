"""Training, evaluation and prediction on prepared stores (``sigconv train``).

:func:`train` runs one loop for every task of :mod:`sigconv.train.tasks`
(classify, denoise, label); :mod:`sigconv.train.plots` draws a run.
"""
from .loop import RUN_FILES, TrainingError, evaluate, load_model, make_model, predict, train
from .plots import plot_run
from .tasks import MODELS, TASKS

__all__ = ["train", "evaluate", "predict", "load_model", "make_model", "plot_run",
           "TrainingError", "TASKS", "MODELS", "RUN_FILES"]
