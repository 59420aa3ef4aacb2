"""A whole small model against PyTorch: forward pass, loss and every gradient, 1-D to 3-D."""
import numpy as np
import pytest

from sigconv import Tensor, nn
from sigconv.checkpoint import to_torch
from sigconv.nn import functional as F


def sigconv_model(ndim, dtype):
    return nn.Sequential(
        nn.Conv(3, 8, 3, ndim=ndim, padding=1, dtype=dtype, rng=1),
        nn.BatchNorm(8, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool(2),
        nn.Conv(8, 6, 3, ndim=ndim, stride=2, padding=1, groups=2, dtype=dtype, rng=2),
        nn.LeakyReLU(0.1),
        nn.AvgPool(2, ceil_mode=True),
        nn.Conv(6, 4, 1, ndim=ndim, bias=False, dtype=dtype, rng=3),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4 * 2 ** ndim, 5, dtype=dtype, rng=4),
    )


def torch_model(torch, ndim):
    tnn = torch.nn
    conv = getattr(tnn, f"Conv{ndim}d")
    return tnn.Sequential(
        conv(3, 8, 3, padding=1),
        getattr(tnn, f"BatchNorm{ndim}d")(8),
        tnn.ReLU(),
        getattr(tnn, f"MaxPool{ndim}d")(2),
        conv(8, 6, 3, stride=2, padding=1, groups=2),
        tnn.LeakyReLU(0.1),
        getattr(tnn, f"AvgPool{ndim}d")(2, ceil_mode=True),
        conv(6, 4, 1, bias=False),
        tnn.Tanh(),
        tnn.Flatten(),
        tnn.Linear(4 * 2 ** ndim, 5),
    )


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_forward_and_gradients_match_torch(torch, rng, ndim, dtype, tol):
    ours = sigconv_model(ndim, dtype)
    theirs = torch_model(torch, ndim).to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs.load_state_dict(to_torch(ours))
    x = rng.standard_normal((4, 3) + (14,) * ndim).astype(dtype)
    target = rng.integers(0, 5, 4)

    xt = Tensor(x.copy(), requires_grad=True)
    loss = F.cross_entropy(ours(xt), target, label_smoothing=0.1)
    loss.backward()
    xt_torch = torch.tensor(x, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(theirs(xt_torch), torch.from_numpy(target),
                                              label_smoothing=0.1)
    tloss.backward()

    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=tol)
    np.testing.assert_allclose(xt.grad, xt_torch.grad.numpy(), rtol=tol, atol=tol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)
    # running statistics were updated the same way
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name], value.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=tol, atol=tol)
