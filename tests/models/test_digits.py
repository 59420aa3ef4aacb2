"""A small CNN learns scikit-learn's real handwritten digits (8x8 images)."""
import numpy as np
import pytest

from sigconv import nn, no_grad, optim
from sigconv.models import Classifier

EPOCHS = 12


def test_classifier_reaches_97_percent_on_load_digits():
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")
    selection = pytest.importorskip("sklearn.model_selection")
    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    x_train, x_test, y_train, y_test = selection.train_test_split(
        images, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    rng = np.random.default_rng(0)
    model = Classifier(1, 10, ndim=2, widths=(24, 48), rng=0)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    schedule = optim.CosineAnnealingLR(opt, EPOCHS)
    for _ in range(EPOCHS):
        model.train()
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        schedule.step()
    model.eval()
    with no_grad():
        accuracy = (model(x_test).data.argmax(axis=1) == y_test).mean()
    print(f"load_digits test accuracy after {EPOCHS} epochs: {accuracy:.4f}")
    assert accuracy >= 0.97
