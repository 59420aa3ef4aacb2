"""Training, evaluation and prediction on prepared stores (``sigconv train``).

:func:`train` runs one loop for every task of :mod:`sigconv.train.tasks`
(classify, denoise, label), with the built-in models or one of yours, and
calls the :mod:`sigconv.train.callbacks` given to it;
:mod:`sigconv.train.metrics` holds the scores beyond the tallies;
:mod:`sigconv.train.inference` scores and uses a trained run;
:mod:`sigconv.train.plots` draws a run.
"""
from .callbacks import Callback, EarlyStopping, MLflow, ModelCheckpoint, TensorBoard
from .inference import evaluate, predict
from .loop import (RUN_FILES, RUN_PATTERNS, RunFinishedError, TrainingError, load_model,
                   make_model, train)
from .plots import plot_run
from .tasks import MODELS, TASKS

__all__ = ["train", "evaluate", "predict", "load_model", "make_model", "plot_run",
           "TrainingError", "RunFinishedError", "TASKS", "MODELS", "RUN_FILES", "RUN_PATTERNS",
           "Callback", "EarlyStopping", "ModelCheckpoint", "TensorBoard", "MLflow"]
