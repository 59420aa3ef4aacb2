"""Test metrics beyond the tallies: per-class precision, recall and F1; SSIM."""
import numpy as np
import pytest

from sigconv.errors import ShapeError
from sigconv.train.metrics import per_class_scores, ssim


def _confusion(true, predicted, classes):
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    return confusion


def test_per_class_scores_match_scikit_learn(rng):
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the oracle")
    true = rng.integers(0, 4, 200)
    predicted = np.where(rng.random(200) < 0.6, true, rng.integers(0, 4, 200))
    predicted[predicted == 3] = 2                        # class 3 is never predicted
    true = np.append(true, [0, 1])
    predicted = np.append(predicted, [4, 4])             # class 4 is predicted, never true
    scores = per_class_scores(_confusion(true, predicted, 5), ["a", "b", "c", "d", "e"])
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        true, predicted, labels=range(5), zero_division=0)
    table = scores["per_class"]
    assert list(table) == ["a", "b", "c", "d", "e"]
    np.testing.assert_allclose([table[k]["precision"] for k in table], precision, atol=1e-12)
    np.testing.assert_allclose([table[k]["recall"] for k in table], recall, atol=1e-12)
    np.testing.assert_allclose([table[k]["f1"] for k in table], f1, atol=1e-12)
    assert [table[k]["support"] for k in table] == support.tolist()
    macro = metrics.precision_recall_fscore_support(true, predicted, labels=range(5),
                                                    average="macro", zero_division=0)
    assert (scores["macro_precision"], scores["macro_recall"], scores["macro_f1"]) == \
        pytest.approx(macro[:3], abs=1e-12)
    assert table["d"]["precision"] == 0 and table["e"]["recall"] == 0
    with pytest.raises(ShapeError, match="one row per class"):
        per_class_scores(np.zeros((2, 3)), ["a", "b"])


@pytest.mark.parametrize("shape", [(1, 300), (1, 40, 37), (3, 24, 30), (1, 14, 20, 18)])
def test_ssim_matches_scikit_image(rng, shape):
    skimage_metrics = pytest.importorskip("skimage.metrics",
                                          reason="scikit-image is the SSIM oracle")
    clean = np.cumsum(rng.standard_normal(shape), axis=-1) * 3 + 50   # structured, offset
    noisy = clean + 2.0 * rng.standard_normal(shape)
    data_range = float(clean.max() - clean.min())
    want = np.mean([skimage_metrics.structural_similarity(
        clean[c], noisy[c], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=data_range) for c in range(shape[0])])
    assert ssim(noisy, clean) == pytest.approx(want, rel=1e-10)
    assert ssim(noisy, clean, data_range=2 * data_range) > ssim(noisy, clean)
    assert ssim(clean, clean) == pytest.approx(1.0)


def test_ssim_of_short_axes_keeps_their_border(rng):
    clean = rng.standard_normal((1, 8, 30))
    noisy = clean + 0.5 * rng.standard_normal(clean.shape)
    value = ssim(noisy, clean)
    assert 0 < value < 1
    with pytest.raises(ShapeError, match="one shape"):
        ssim(noisy, clean[:, :4])
    with pytest.raises(ShapeError, match="1 to 3 spatial axes"):
        ssim(clean[0, 0], clean[0, 0])


def test_classification_scores_carry_the_per_class_table():
    from sigconv.train.tasks import Classification

    class Fixed:
        """A 'model' whose logits favour class 0 for every item."""

        def eval(self):
            return self

        def __call__(self, x):
            from sigconv.autograd import Tensor

            n = len(list(x.data))
            return Tensor(np.tile(np.array([[2.0, 0.0, 1.0]], np.float32), (n, 1)))

    task = Classification({"classes": ["x", "y", "z"]})
    data = [(np.zeros((1, 5 + i), np.float32), i % 3) for i in range(9)]
    scores = task.evaluate(Fixed(), data)
    assert scores["per_class"]["x"] == {"precision": pytest.approx(1 / 3), "recall": 1.0,
                                        "f1": pytest.approx(0.5), "support": 3}
    assert scores["per_class"]["y"]["f1"] == 0 and scores["macro_recall"] == pytest.approx(1 / 3)
