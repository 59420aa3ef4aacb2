"""sigconv.export.to_torch_module: the twin gives sigconv's outputs and gradients, layer by
layer and for the demo's models; names, dtypes and modes; against the hand-written twins."""
import sys

import numpy as np
import pytest

from sigconv import Tensor, nn
from sigconv.checkpoint import from_torch, to_torch
from sigconv.errors import ArgumentError, ExportError
from sigconv.export import to_torch_module
from sigconv.models import Classifier

from . import cases

torch = pytest.importorskip("torch", reason="PyTorch is not installed; it is an optional oracle")

TOL32 = 1e-5
TOL64 = 1e-9


def assert_twin_matches(model, x, dtype):
    """Outputs, input gradient and every parameter's gradient agree (one random output
    gradient), to 1e-5 in float32 and 1e-9 in float64."""
    tol = TOL64 if dtype == np.float64 else TOL32
    gradients = dtype == np.float64  # float32 gradients are sums of many rounded terms
    twin = to_torch_module(model)
    xt = Tensor(x.copy(), requires_grad=gradients)
    out = model(xt)
    x_torch = torch.tensor(x, requires_grad=gradients)
    out_torch = twin(x_torch)
    assert out_torch.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    np.testing.assert_allclose(out_torch.detach().numpy(), out.data, rtol=tol, atol=tol)
    if gradients:
        g = np.random.default_rng(1).standard_normal(out.shape)
        model.zero_grad()
        (out * Tensor(g)).sum().backward()
        out_torch.backward(torch.from_numpy(g))
        np.testing.assert_allclose(x_torch.grad.numpy(), xt.grad, rtol=tol, atol=tol)
        grads = dict(twin.named_parameters())
        for name, p in model.named_parameters():
            np.testing.assert_allclose(grads[name].grad.numpy(), p.grad, rtol=tol, atol=tol,
                                       err_msg=name)
    return twin


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name", [c[0] for c in cases.LAYER_CASES])
def test_each_layer_matches_its_twin(name, nd):
    """In float64, gradients included (the models below run in float32 too)."""
    module, sizes = cases.layer(name, nd, np.float64)
    for x in cases.inputs(sizes, np.float64):
        assert_twin_matches(module, x, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(cases.MODELS))
def test_demo_models_match_their_twins_on_two_sizes(name, dtype):
    model, channels, sizes = cases.model(name, dtype)
    for x in cases.inputs(sizes, dtype, channels=channels):
        twin = assert_twin_matches(model, x, dtype)
    assert list(twin.state_dict()) == list(model.state_dict())


def test_twin_is_made_of_pytorch_layers_with_the_models_names():
    model = Classifier(2, 3, ndim=2, widths=(4, 8), rng=0)
    twin = to_torch_module(model)
    assert type(twin.features[0]) is torch.nn.Conv2d and twin.features[0].padding == (1, 1)
    assert isinstance(twin.features[1], torch.nn.modules.batchnorm._BatchNorm)
    assert type(twin.head) is torch.nn.Linear and type(twin.features) is torch.nn.Sequential
    assert type(twin).__name__ == "Composite" and repr(twin).startswith("Classifier(")
    even = to_torch_module(nn.Conv(1, 1, 4, ndim=2))  # "same" pads 1 before, 2 after
    assert type(even).__name__ == "PaddedConv2d" and isinstance(even, torch.nn.Conv2d)
    strided = to_torch_module(nn.ConvTranspose(1, 1, 3, ndim=1, stride=2, padding=((1, 0),)))
    assert type(strided).__name__ == "CroppedConvTranspose1d"


def test_modes_follow_the_model_and_training_steps_agree():
    model = cases.randomise_norms(Classifier(1, 3, ndim=1, widths=(4, 8), rng=0,
                                             dtype=np.float64))
    model.train()
    model.features[1].eval()
    twin = to_torch_module(model)
    assert [m.training for m in twin.modules()] == [m.training for m in model.modules()]
    model.train()
    twin.train()
    x = np.random.default_rng(0).standard_normal((4, 1, 30))
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), model(x).data,
                               atol=TOL64)
    for key, value in twin.state_dict().items():  # running statistics moved alike
        np.testing.assert_allclose(value.numpy(), model.state_dict()[key], atol=TOL64,
                                   err_msg=key)


def test_weights_trained_in_torch_come_back():
    model = cases.randomise_norms(Classifier(1, 3, ndim=1, widths=(4, 8), rng=0)).eval()
    twin = to_torch_module(model).train()
    x = np.random.default_rng(0).standard_normal((6, 1, 40)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    before = model(x).data
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    opt.step()
    twin.eval()
    model.load_state_dict(from_torch(twin))
    np.testing.assert_allclose(model(x).data, twin(torch.from_numpy(x)).detach().numpy(),
                               atol=TOL32)
    assert not np.allclose(model(x).data, before)


def test_agrees_with_the_hand_written_twins():
    """The twins tests/nn and tests/models write by hand (the independent oracles of the
    models' architecture) and the built one have the same names and outputs."""
    from tests.models.test_models import torch_classifier
    from tests.nn.test_residual import torch_twin

    rng = np.random.default_rng(0)
    for ndim, norm in [(1, "batch"), (2, "group"), (3, "instance")]:
        model = cases.randomise_norms(Classifier(2, 3, ndim=ndim, widths=(4, 8, 8),
                                                 residual=True, norm=norm, rng=0)).eval()
        hand = torch_twin(torch, ndim=ndim, in_channels=2, num_classes=3, widths=(4, 8, 8),
                          norm=norm).eval()
        built = to_torch_module(model)
        hand.load_state_dict(to_torch(model))
        x = torch.from_numpy(rng.standard_normal((2, 2) + (8,) * ndim).astype(np.float32))
        assert list(built.state_dict()) == list(hand.state_dict())
        np.testing.assert_allclose(built(x).detach().numpy(), hand(x).detach().numpy(),
                                   atol=TOL32)
    model = cases.randomise_norms(Classifier(2, 3, ndim=2, widths=(4, 6), rng=0)).eval()
    hand = torch_classifier(torch, 2, (4, 6), 2, 3).eval()
    hand.load_state_dict(to_torch(model))
    x = torch.from_numpy(rng.standard_normal((2, 2, 10, 9)).astype(np.float32))
    np.testing.assert_allclose(to_torch_module(model)(x).detach().numpy(),
                               hand(x).detach().numpy(), atol=TOL32)


@pytest.mark.parametrize("layer, name", [
    (nn.LocalConv(4, 4, 3, ndim=1, input_size=20), "LocalConv"),
    (nn.TiledConv(4, 4, 3, ndim=1, tile=2), "TiledConv")])
def test_unshared_layers_are_refused_by_path(layer, name):
    model = Classifier(1, 3, ndim=1, widths=(4, 8), rng=0)
    model.features._modules["3"] = layer
    with pytest.raises(ExportError, match=rf"to_torch_module cannot export features\.3 "
                                          rf"\({name}\)"):
        to_torch_module(model)


def test_empty_slots_are_refused_by_path():
    model = Classifier(1, 3, ndim=1, widths=(4, 8), rng=0)
    model.features._modules["3"] = None
    with pytest.raises(ExportError, match=r"to_torch_module cannot export features\.3: the "
                                          r"slot holds None"):
        to_torch_module(model)


def test_bad_input_and_missing_torch(monkeypatch):
    with pytest.raises(ArgumentError, match="to_torch_module takes a sigconv.nn.Module, got "
                                            "Sequential"):
        to_torch_module(torch.nn.Sequential())
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match="to_torch_module needs PyTorch.*pip install torch"):
        to_torch_module(nn.ReLU())
