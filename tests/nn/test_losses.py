"""Losses: finite differences in float64, PyTorch's numbers and gradients, Dice by hand."""
import numpy as np
import pytest

from sigconv import Tensor, gradcheck, nn
from sigconv.nn import functional as F

CE_CASES = [
    dict(),
    dict(weight=[0.5, 2.0, 1.0, 1.5]),
    dict(label_smoothing=0.1),
    dict(weight=[0.5, 2.0, 1.0, 1.5], label_smoothing=0.2),
    dict(reduction="sum", label_smoothing=0.05),
    dict(reduction="none", weight=[1.0, 2.0, 3.0, 4.0]),
    dict(ignore_index=2, label_smoothing=0.1, weight=[0.5, 2.0, 1.0, 1.5]),
]


@pytest.mark.parametrize("options", CE_CASES)
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 6), (2, 4, 3, 3)])
def test_cross_entropy_gradcheck(rng, options, shape):
    logits = Tensor(rng.standard_normal(shape), requires_grad=True)
    target = rng.integers(0, 4, (shape[0],) + shape[2:])
    assert gradcheck(lambda z: F.cross_entropy(z, target, **options), [logits])


@pytest.mark.parametrize("options", CE_CASES)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3, 3)])
def test_cross_entropy_matches_torch(torch, rng, options, shape):
    logits = rng.standard_normal(shape)
    target = rng.integers(0, 4, (shape[0],) + shape[2:])
    z = Tensor(logits, requires_grad=True)
    ours = F.cross_entropy(z, target, **options)
    ours.backward(np.ones(ours.shape))
    tz = torch.tensor(logits, requires_grad=True)
    topts = dict(options)
    if "weight" in topts:
        topts["weight"] = torch.tensor(topts["weight"], dtype=torch.float64)
    theirs = torch.nn.functional.cross_entropy(tz, torch.from_numpy(target), **topts)
    theirs.backward(torch.ones_like(theirs))
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(z.grad, tz.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cross_entropy_float32_is_stable_for_large_logits():
    z = Tensor(np.array([[1000.0, 0.0], [0.0, -1000.0]], np.float32), requires_grad=True)
    loss = F.cross_entropy(z, np.array([0, 0]))
    assert loss.dtype == np.float32 and np.isfinite(loss.item()) and loss.item() < 1e-6
    loss.backward()
    assert np.all(np.isfinite(z.grad))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse(rng, torch, reduction):
    a = Tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    b = rng.standard_normal((3, 2, 4))
    assert gradcheck(lambda a: F.mse_loss(a, b, reduction=reduction), [a])
    theirs = torch.nn.functional.mse_loss(torch.from_numpy(a.data), torch.from_numpy(b),
                                          reduction=reduction)
    np.testing.assert_allclose(nn.MSELoss(reduction=reduction)(a, b).data, theirs.numpy())


def dice_by_hand(probs, onehot, smooth):
    axes = (0,) + tuple(range(2, probs.ndim))
    inter = (probs * onehot).sum(axes)
    return 1 - np.mean((2 * inter + smooth) / (probs.sum(axes) + onehot.sum(axes) + smooth))


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 4), (1, 3, 3, 3, 3)])
def test_dice_multiclass(rng, shape):
    logits = Tensor(rng.standard_normal(shape), requires_grad=True)
    labels = rng.integers(0, 3, (shape[0],) + shape[2:])
    assert gradcheck(lambda z: F.dice_loss(z, labels, smooth=0.5), [logits])
    e = np.exp(logits.data)
    probs = e / e.sum(1, keepdims=True)
    onehot = np.moveaxis(np.eye(3)[labels], -1, 1)
    np.testing.assert_allclose(nn.DiceLoss(smooth=0.5)(logits, labels).item(),
                               dice_by_hand(probs, onehot, 0.5))
    # soft masks of the logits' shape give the same result as the labels
    np.testing.assert_allclose(F.dice_loss(logits, onehot, smooth=0.5).item(),
                               dice_by_hand(probs, onehot, 0.5))


def test_dice_binary_uses_sigmoid(rng):
    logits = Tensor(rng.standard_normal((2, 1, 6, 6)), requires_grad=True)
    mask = rng.integers(0, 2, (2, 6, 6))
    assert gradcheck(lambda z: F.dice_loss(z, mask), [logits])
    p = 1 / (1 + np.exp(-logits.data))
    np.testing.assert_allclose(F.dice_loss(logits, mask).item(),
                               dice_by_hand(p, mask[:, None].astype(float), 1.0))


def test_perfect_prediction_has_low_losses():
    labels = np.array([[0, 1, 2, 1]])
    logits = np.moveaxis(np.eye(3)[labels], -1, 1) * 50.0
    assert F.cross_entropy(logits, labels).item() < 1e-6
    assert F.dice_loss(logits, labels, smooth=1e-6).item() < 1e-6
