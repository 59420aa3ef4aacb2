"""Residual connections: nn.Residual, models.residual_block and Classifier(residual=True).

The residual classifier is checked against a PyTorch twin built here (its
state dict loads as it is): the same loss, every gradient and the same logits.
"""
import numpy as np
import pytest

from sigconv import ArgumentError, ShapeError, Tensor, gradcheck, nn, optim
from sigconv.checkpoint import from_torch, to_torch
from sigconv.models import Classifier, conv_block, default_groups, norm_layer, residual_block
from sigconv.nn import functional as F
from sigconv.ragged import Ragged


def test_residual_adds_the_input_or_the_shortcut(rng):
    x = rng.standard_normal((2, 3, 5))
    body = nn.Conv(3, 3, 3, ndim=1, dtype=np.float64, rng=0)
    np.testing.assert_allclose(nn.Residual(body)(x).data, body(x).data + x)
    shortcut = nn.Conv(3, 3, 1, ndim=1, dtype=np.float64, rng=1)
    block = nn.Residual(body, shortcut)
    np.testing.assert_allclose(block(x).data, body(x).data + shortcut(x).data)
    assert list(block.state_dict()) == ["body.weight", "body.bias", "shortcut.weight",
                                        "shortcut.bias"]
    assert list(nn.Residual(body).state_dict()) == ["body.weight", "body.bias"]
    assert "(shortcut): None" in repr(nn.Residual(body))
    xt = Tensor(x, requires_grad=True)
    assert gradcheck(lambda x, *p: block(x), [xt] + list(block.parameters()))


def test_residual_on_ragged_batches(rng):
    items = [rng.standard_normal((2, n)) for n in (4, 9, 1)]
    block = nn.Residual(nn.Sequential(nn.Conv(2, 2, 3, ndim=1, dtype=np.float64, rng=0),
                                      nn.GELU()))
    x = Tensor(Ragged.from_list(items), requires_grad=True)
    out = block(x)
    assert out.ragged
    for i, item in enumerate(items):
        np.testing.assert_allclose(out.data[i], block(item[None]).data[0], atol=1e-12)
    assert gradcheck(lambda t: block(t), [x])


def test_residual_errors(rng):
    with pytest.raises(ArgumentError, match="Residual's body must be a Module"):
        nn.Residual(lambda x: x)
    with pytest.raises(ArgumentError, match="Residual's shortcut must be a Module"):
        nn.Residual(nn.Identity(), shortcut=3)
    with pytest.raises(ShapeError, match=r"the body gives shape \(2, 4, 5\) but the input gives "
                                         r"shape \(2, 3, 5\).*1x1 Conv"):
        nn.Residual(nn.Conv(3, 4, 3, ndim=1))(np.zeros((2, 3, 5), np.float32))
    ragged = Tensor(Ragged.from_list([np.zeros((3, 6), np.float32), np.zeros((3, 8), np.float32)]))
    with pytest.raises(ShapeError, match="but the shortcut gives"):
        nn.Residual(nn.Conv(3, 3, 3, ndim=1, stride=2), nn.Identity())(ragged)


def test_residual_block_structure(rng):
    same = residual_block(4, 4, ndim=2, rng=0)
    assert same[0].shortcut is None and isinstance(same[1], nn.ReLU)
    grow = residual_block(4, 8, ndim=2, rng=0)
    assert [type(m).__name__ for m in grow[0].shortcut] == ["Conv", "BatchNorm"]
    assert grow[0].shortcut[0].kernel_size == (1, 1)
    assert [type(m).__name__ for m in grow[0].body] == ["Conv", "BatchNorm", "ReLU", "Conv",
                                                        "BatchNorm"]
    strided = residual_block(4, 4, ndim=1, stride=2, norm=None, rng=0)
    assert strided[0].shortcut is not None and strided[0].body[0].bias is not None
    x = rng.standard_normal((2, 4, 9)).astype(np.float32)
    assert strided(x).shape == (2, 4, 5)
    grouped = residual_block(4, 8, ndim=3, norm="group", rng=0)
    assert isinstance(grouped[0].body[1], nn.GroupNorm) and grouped[0].body[1].num_groups == 2
    custom = residual_block(2, 2, ndim=1, norm=lambda c: nn.GroupNorm(1, c), rng=0)
    assert custom[0].body[1].num_groups == 1
    with pytest.raises(ArgumentError, match="stride 2 needs an odd kernel_size"):
        residual_block(4, 4, ndim=1, kernel_size=4, stride=2)
    with pytest.raises(ArgumentError, match="norm must be 'batch', 'group', 'instance', None"):
        residual_block(4, 4, ndim=1, norm="layer")
    with pytest.raises(ArgumentError, match=r"norm\(4\) must return a Module"):
        residual_block(4, 4, ndim=1, norm=lambda c: None)


def test_residual_block_gradcheck(rng):
    for norm in ("batch", "group", "instance", None):
        block = residual_block(2, 3, ndim=2, norm=norm, dtype=np.float64, rng=0)
        x = Tensor(rng.standard_normal((2, 2, 4, 3)), requires_grad=True)
        assert gradcheck(lambda x, *p: block(x), [x] + list(block.parameters())), norm


def test_default_groups_and_norm_layers():
    assert [default_groups(c) for c in (1, 3, 8, 12, 16, 32, 64, 128, 256, 6)] == \
        [1, 1, 2, 3, 4, 8, 16, 32, 32, 1]
    assert isinstance(norm_layer("batch", 4), nn.BatchNorm)
    layer = norm_layer("instance", 4, dtype=np.float64)
    assert layer.affine and layer.weight.dtype == np.float64
    assert norm_layer(None, 4) is None
    with pytest.raises(ArgumentError, match="norm must be"):
        norm_layer(True, 4)


def test_classifier_defaults_are_unchanged():
    """residual=False and norm="batch" keep the layers and state-dict names of before."""
    model = Classifier(2, 3, ndim=1, widths=(4, 8), rng=0)
    assert list(model.state_dict()) == [
        "features.0.weight", "features.1.weight", "features.1.bias", "features.1.running_mean",
        "features.1.running_var", "features.1.num_batches_tracked", "features.4.weight",
        "features.5.weight", "features.5.bias", "features.5.running_mean",
        "features.5.running_var", "features.5.num_batches_tracked", "head.weight", "head.bias"]
    assert [type(m).__name__ for m in model.features] == ["Conv", "BatchNorm", "ReLU", "MaxPool",
                                                          "Conv", "BatchNorm", "ReLU"]
    plain = Classifier(2, 3, ndim=1, widths=(4, 8), batch_norm=False, rng=0)
    assert [type(m).__name__ for m in plain.features] == ["Conv", "ReLU", "MaxPool", "Conv",
                                                          "ReLU"]
    assert list(plain.state_dict()) == list(
        Classifier(2, 3, ndim=1, widths=(4, 8), norm=None, rng=0).state_dict())
    with pytest.raises(ArgumentError, match="batch_norm=False .* contradicts norm='group'"):
        Classifier(2, 3, ndim=1, batch_norm=False, norm="group")
    with pytest.raises(ArgumentError, match="contradicts"):
        conv_block(2, 3, ndim=1, batch_norm=False, norm="instance")


def _torch_norm(torch, norm, ndim, c):
    if norm == "batch":
        return getattr(torch.nn, f"BatchNorm{ndim}d")(c)
    if norm == "group":
        return torch.nn.GroupNorm(default_groups(c), c)
    return getattr(torch.nn, f"InstanceNorm{ndim}d")(c, affine=True)


def torch_twin(torch, *, ndim, in_channels, num_classes, widths, norm):
    """PyTorch's ``Classifier(..., residual=True, norm=norm)``: same names and layer indices."""
    tnn = torch.nn
    conv = getattr(tnn, f"Conv{ndim}d")

    class Residual(tnn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    layers, c = [], in_channels
    for i, w in enumerate(widths):
        if i == 0:
            layers += [conv(c, w, 3, padding=1, bias=False), _torch_norm(torch, norm, ndim, w),
                       tnn.ReLU()]
        else:
            body = tnn.Sequential(conv(c, w, 3, padding=1, bias=False),
                                  _torch_norm(torch, norm, ndim, w), tnn.ReLU(),
                                  conv(w, w, 3, padding=1, bias=False),
                                  _torch_norm(torch, norm, ndim, w))
            shortcut = None if c == w else tnn.Sequential(conv(c, w, 1, bias=False),
                                                          _torch_norm(torch, norm, ndim, w))
            layers += [Residual(body, shortcut), tnn.ReLU()]
        if i < len(widths) - 1:
            layers.append(getattr(tnn, f"MaxPool{ndim}d")(2))
        c = w

    class Twin(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(*layers)
            self.head = tnn.Linear(c, num_classes)

        def forward(self, x):
            return self.head(self.features(x).flatten(2).mean(2))

    return Twin()


@pytest.mark.parametrize("ndim, norm", [(1, "batch"), (2, "group"), (3, "batch"),
                                        (1, "instance"), (3, "group")])
def test_residual_classifier_matches_its_torch_twin(torch, rng, ndim, norm):
    widths = (4, 8, 8)
    model = Classifier(2, 3, ndim=ndim, widths=widths, residual=True, norm=norm, rng=0)
    size = 16 if ndim == 1 else 8
    x = rng.standard_normal((4, 2) + (size,) * ndim).astype(np.float32)
    y = rng.integers(0, 3, 4)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):  # trained weights (and running statistics), not the initial ones
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    twin = torch_twin(torch, ndim=ndim, in_channels=2, num_classes=3, widths=widths, norm=norm)
    assert list(twin.state_dict()) == list(model.state_dict())
    twin.load_state_dict(to_torch(model))
    # a training step in both: the same loss and gradients
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    tparams = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=1e-3, atol=1e-5,
                                   err_msg=name)
    model.eval(), twin.eval()
    logits = model(x).data
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), logits, atol=1e-5)
    # and back from PyTorch into a fresh model
    fresh = Classifier(2, 3, ndim=ndim, widths=widths, residual=True, norm=norm, rng=5).eval()
    fresh.load_state_dict(from_torch(twin))
    np.testing.assert_allclose(fresh(x).data, logits, atol=1e-6)
