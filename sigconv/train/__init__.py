"""Training, evaluation and prediction on prepared stores (``sigconv train``).

:func:`train` runs one loop for every task of :mod:`sigconv.train.tasks`
(classify, denoise, label); :mod:`sigconv.train.inference` scores and uses a trained run;
:mod:`sigconv.train.plots` draws a run.
"""
from .inference import evaluate, predict
from .loop import RUN_FILES, TrainingError, load_model, make_model, train
from .plots import plot_run
from .tasks import MODELS, TASKS

__all__ = ["train", "evaluate", "predict", "load_model", "make_model", "plot_run",
           "TrainingError", "TASKS", "MODELS", "RUN_FILES"]
