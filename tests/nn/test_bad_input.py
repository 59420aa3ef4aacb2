"""Bad input to layers, losses and models: each case raises sigconv's error with a clear message."""
import numpy as np
import pytest

from sigconv import ArgumentError, DTypeError, ShapeError, Tensor, nn
from sigconv.models import Classifier, EncoderDecoder, StructuredLabeller
from sigconv.nn import functional as F

X2 = np.zeros((2, 3, 8, 8), np.float32)

CASES = [
    # constructors
    (lambda: nn.Conv(3, 4, 3, ndim=4), ArgumentError, "ndim must be 1, 2 or 3"),
    (lambda: nn.Conv(3, 4, 3, ndim=2, groups=2), ArgumentError, "groups=2 must divide"),
    (lambda: nn.Conv(0, 4, 3, ndim=2), ArgumentError, "in_channels must be a positive int"),
    (lambda: nn.Conv(3, 4, (3, 3, 3), ndim=2), ArgumentError, "kernel_size must have one value"),
    (lambda: nn.Conv(3, 4, 3, ndim=2, stride=0), ArgumentError, "stride must be >= 1"),
    (lambda: nn.Conv(3, 4, 3, ndim=2, method="magic"), ArgumentError, "method must be one of"),
    (lambda: nn.Conv(3, 4, 3, ndim=2, dtype=np.int32), DTypeError, "float32 or float64"),
    (lambda: nn.Linear(3, -1), ArgumentError, "out_features must be a positive int"),
    (lambda: nn.BatchNorm(3, momentum=2), ArgumentError, "momentum must be in"),
    (lambda: nn.Dropout(1.0), ArgumentError, r"p must be in \[0, 1\)"),
    (lambda: nn.GlobalPool("median"), ArgumentError, "kind must be one of 'avg', 'max', 'lp'"),
    (lambda: nn.Maxout(0), ArgumentError, "pieces must be a positive int"),
    (lambda: nn.Upsample(), ArgumentError, "exactly one of scale_factor and size"),
    (lambda: nn.LocalConv(1, 2, 9, ndim=2, input_size=4), ArgumentError, "larger than the padded"),
    (lambda: StructuredLabeller(1, 1, ndim=2), ArgumentError, "num_classes must be >= 2"),
    (lambda: Classifier(1, 3, ndim=2, widths=(0,)), ArgumentError, "widths must be a positive"),
    # layer inputs
    (lambda: nn.Conv(3, 4, 3, ndim=2)(np.zeros((2, 3, 8), np.float32)), ShapeError,
     r"ndim=2 expects input \(N, C, H, W\), got shape \(2, 3, 8\)"),
    (lambda: nn.Conv(3, 4, 3, ndim=1)(np.zeros((2, 4, 8), np.float32)), ShapeError,
     "expects 3 input channels"),
    (lambda: nn.Conv(3, 4, 3, ndim=2)(X2.astype(np.float64)), DTypeError, "dtypes do not match"),
    (lambda: nn.Conv(3, 4, 9, ndim=2, padding="valid")(X2), ShapeError, "kernel is larger"),
    (lambda: nn.Conv(3, 4, 3, ndim=2, padding="huge")(X2), ArgumentError, "padding"),
    (lambda: nn.MaxPool(16)(X2), ShapeError, "larger than the padded input"),
    (lambda: nn.Maxout(2)(X2), ShapeError, "not a multiple of pieces=2"),
    (lambda: nn.Linear(5, 2)(np.zeros((2, 4), np.float32)), ShapeError,
     r"Linear expects input \(\*, 5\), got shape \(2, 4\)"),
    (lambda: nn.Linear(4, 2)(np.zeros((2, 4), np.float64)), DTypeError, "dtypes do not match"),
    (lambda: nn.BatchNorm(4)(X2), ShapeError, r"BatchNorm expects input \(N, 4, \*spatial\)"),
    (lambda: nn.BatchNorm(3)(np.zeros((1, 3), np.float32)), ShapeError, "more than one value"),
    (lambda: nn.GlobalPool()(np.zeros((2, 3), np.float32)), ShapeError, "1 to 3 spatial axes"),
    (lambda: nn.Upsample(size=(2, 2, 2))(X2), ArgumentError, "size must have one value"),
    (lambda: nn.Flatten()(np.zeros(3)).reshape(2, 2), ShapeError, "cannot reshape"),
    # losses
    (lambda: F.cross_entropy(np.zeros((4, 3)), np.zeros(5, int)), ShapeError,
     r"target must have shape \(N, \*spatial\) = \(4,\)"),
    (lambda: F.cross_entropy(np.zeros((4, 3)), np.zeros(4)), DTypeError, "integer class indices"),
    (lambda: F.cross_entropy(np.zeros((4, 3)), np.array([0, 1, 3, 0])), ArgumentError,
     "target holds class 3, outside 0..2"),
    (lambda: F.cross_entropy(np.zeros((4, 3)), np.zeros(4, int), weight=[1, 2]), ShapeError,
     "one value per class"),
    (lambda: F.cross_entropy(np.zeros((4, 3)), np.zeros(4, int), label_smoothing=1.5),
     ArgumentError, "label_smoothing"),
    (lambda: F.cross_entropy(np.zeros((4, 3)), np.zeros(4, int), reduction="avg"),
     ArgumentError, "reduction must be one of"),
    (lambda: F.cross_entropy(np.zeros(4), np.zeros(4, int)), ShapeError, "logits must have"),
    (lambda: F.mse_loss(np.zeros((2, 3)), np.zeros((3, 2))), ShapeError, "they must match"),
    (lambda: F.dice_loss(np.zeros((2, 3)), np.zeros(2, int)), ShapeError, "needs logits"),
    (lambda: F.dice_loss(np.zeros((2, 3, 4)), np.full((2, 4), 5)), ArgumentError,
     "labels outside"),
    (lambda: F.dice_loss(np.zeros((2, 3, 4)), np.zeros((2, 4), int), smooth=0), ArgumentError,
     "smooth must be > 0"),
    # models
    (lambda: EncoderDecoder(1, 2, ndim=2)(np.zeros((1, 1, 8), np.float32)), ShapeError,
     "EncoderDecoder with ndim=2 expects input"),
    (lambda: F.dropout(Tensor(np.ones(3)), p=-0.1), ArgumentError, "dropout probability"),
]


@pytest.mark.parametrize("call, error, message", CASES)
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()
