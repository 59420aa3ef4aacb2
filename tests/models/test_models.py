"""Models: one definition on 1-D, 2-D and 3-D data; the labeller's shared weights; PyTorch exchange."""
import numpy as np
import pytest

from sigconv import ShapeError, Tensor, gradcheck, nn, no_grad, optim
from sigconv.checkpoint import from_torch, to_torch
from sigconv.models import Classifier, EncoderDecoder, StructuredLabeller


@pytest.mark.parametrize("ndim, size", [(1, 40), (2, 12), (3, 8)])
def test_classifier_same_class_every_rank(rng, ndim, size):
    model = Classifier(2, 4, ndim=ndim, widths=(4, 8), rng=0)
    x = rng.standard_normal((3, 2) + (size,) * ndim).astype(np.float32)
    out = model(x)
    assert out.shape == (3, 4) and out.dtype == np.float32
    nn.functional.cross_entropy(out, np.array([0, 1, 3])).backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    # any input size: global pooling absorbs it
    assert model(rng.standard_normal((1, 2) + (size + 3,) * ndim).astype(np.float32)).shape == (1, 4)


@pytest.mark.parametrize("ndim, size", [(1, 11), (2, 7), (3, 5)])
def test_encoder_decoder_keeps_size(rng, ndim, size):
    model = EncoderDecoder(1, 3, ndim=ndim, widths=(4, 6, 8), convs=1, rng=0)
    x = rng.standard_normal((2, 1) + (size,) * ndim).astype(np.float32)
    out = model(x)
    assert out.shape == (2, 3) + (size,) * ndim
    nn.functional.dice_loss(out, rng.integers(0, 3, (2,) + (size,) * ndim)).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_encoder_decoder_gradcheck(rng):
    model = EncoderDecoder(1, 2, ndim=2, widths=(2, 3), convs=1, batch_norm=False,
                           dtype=np.float64, rng=0)
    x = Tensor(rng.standard_normal((1, 1, 5, 4)), requires_grad=True)
    assert gradcheck(lambda x, *p: model(x), [x] + list(model.parameters())[:2])


@pytest.mark.parametrize("ndim", [2, 3])
def test_labeller_refines_with_shared_weights(rng, ndim):
    shape = (2, 3) + (6,) * ndim
    x = rng.standard_normal(shape).astype(np.float32)
    one = StructuredLabeller(3, 4, ndim=ndim, hidden=5, steps=1, rng=0)
    four = StructuredLabeller(3, 4, ndim=ndim, hidden=5, steps=4, rng=0)
    # the same parameters whatever the number of steps: the convolutions are reused
    assert [(n, p.shape) for n, p in one.named_parameters()] == \
        [(n, p.shape) for n, p in four.named_parameters()]
    outputs = four(x, return_all=True)
    assert len(outputs) == 4 and all(o.shape == (2, 4) + shape[2:] for o in outputs)
    np.testing.assert_array_equal(outputs[0].data, one(x).data)  # step 1 is the initial guess
    assert not np.allclose(outputs[0].data, outputs[-1].data)  # later steps refine it
    loss = sum(nn.functional.cross_entropy(o, rng.integers(0, 4, (2,) + shape[2:]))
               for o in outputs)
    loss.backward()
    assert np.abs(four.feedback_conv.weight.grad).sum() > 0


def test_labeller_gradcheck(rng):
    model = StructuredLabeller(1, 2, ndim=2, hidden=2, steps=3, dtype=np.float64, rng=0)
    x = Tensor(rng.standard_normal((1, 1, 4, 4)), requires_grad=True)
    assert gradcheck(lambda x, *p: model(x), [x] + list(model.parameters()))


def test_labeller_learns_to_clean_labels(rng):
    """Recover a blocky label map from noisy input: refinement beats the initial guess."""
    labels = np.kron(rng.integers(0, 2, (16, 4, 4)), np.ones((4, 4), int))  # (16, 16, 16)
    x = (labels[:, None] * 2.0 - 1 + rng.standard_normal((16, 1, 16, 16)) * 1.2).astype(np.float32)
    model = StructuredLabeller(1, 2, ndim=2, hidden=8, steps=3, rng=0)
    opt = optim.Adam(model.parameters(), lr=0.03)
    for _ in range(60):
        outputs = model(x, return_all=True)
        loss = sum(nn.functional.cross_entropy(o, labels) for o in outputs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with no_grad():
        outputs = model(x, return_all=True)
    first, last = [(o.data.argmax(1) == labels).mean() for o in (outputs[0], outputs[-1])]
    assert last > first and last > 0.9


def test_model_input_errors(rng):
    model = Classifier(2, 3, ndim=2, widths=(4,))
    with pytest.raises(ShapeError, match=r"Conv with ndim=2 expects input \(N, C, H, W\), got "
                                         r"shape \(1, 2, 8\)"):
        model(np.zeros((1, 2, 8), np.float32))
    with pytest.raises(ShapeError, match="expects 2 input channels"):
        model(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(ShapeError, match="StructuredLabeller with ndim=3 expects input"):
        StructuredLabeller(1, 2, ndim=3)(np.zeros((1, 1, 4, 4), np.float32))


def torch_classifier(torch, ndim, widths, in_channels, num_classes):
    """PyTorch's twin of ``Classifier`` (same attribute names and layer indices)."""
    tnn = torch.nn
    layers, c = [], in_channels
    for i, w in enumerate(widths):
        layers += [getattr(tnn, f"Conv{ndim}d")(c, w, 3, padding=1, bias=False),
                   getattr(tnn, f"BatchNorm{ndim}d")(w), tnn.ReLU()]
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


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_trained_model_moves_to_torch_and_back(torch, rng, ndim):
    model = Classifier(2, 3, ndim=ndim, widths=(4, 6), rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = rng.standard_normal((6, 2) + (8,) * ndim).astype(np.float32)
    y = rng.integers(0, 3, 6)
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    twin = torch_classifier(torch, ndim, (4, 6), 2, 3).eval()
    twin.load_state_dict(to_torch(model))
    expected = model(x).data
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), expected, atol=1e-5)
    # train in PyTorch, bring the weights back: identical outputs again
    twin.train()
    topt = torch.optim.SGD(twin.parameters(), lr=0.1)
    tloss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    topt.step()
    twin.eval()
    model.load_state_dict(from_torch(twin))
    np.testing.assert_allclose(model(x).data, twin(torch.from_numpy(x)).detach().numpy(),
                               atol=1e-5)
    assert not np.allclose(model(x).data, expected)
