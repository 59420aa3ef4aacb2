"""Optimisers, schedules and clipping against torch.optim, plus convergence without PyTorch."""
import math

import numpy as np
import pytest

from sigconv import ArgumentError, Tensor, nn, optim


OPTIMISERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, eps=1e-6)),
]


@pytest.mark.parametrize("name, options", OPTIMISERS)
def test_updates_match_torch(torch, name, options):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ours = [Tensor(s.copy(), requires_grad=True) for s in start]
    theirs = [torch.tensor(s.copy(), requires_grad=True) for s in start]
    topts = dict(options)
    ours_opt = getattr(optim, name)(ours, **options)
    theirs_opt = getattr(torch.optim, name)(theirs, **topts)
    for _ in range(6):
        for o, t in zip(ours, theirs):
            g = rng.standard_normal(o.shape)
            o.grad = g.copy()
            t.grad = torch.from_numpy(g.copy())
        ours_opt.step()
        theirs_opt.step()
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.data, t.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, torch_make", [
    (lambda o: optim.StepLR(o, 3, gamma=0.5),
     lambda torch, o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.5)),
    (lambda o: optim.CosineAnnealingLR(o, 7, eta_min=0.01),
     lambda torch, o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.01)),
])
def test_schedules_match_torch(torch, make, torch_make):
    ours_opt = optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1)
    theirs_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    ours, theirs = make(ours_opt), torch_make(torch, theirs_opt)
    for _ in range(7):
        ours_opt.step(), theirs_opt.step()
        ours.step(), theirs.step()
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)


def test_cosine_schedule_endpoints():
    opt = optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    sched = optim.CosineAnnealingLR(opt, 4)
    lrs = []
    for _ in range(6):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs[:4], [(1 + math.cos(math.pi * k / 4)) / 2 for k in (1, 2, 3, 4)])
    assert lrs[4] == lrs[5] == 0.0


def test_clip_grad_norm_matches_torch(torch, rng):
    grads = [rng.standard_normal((3, 3)), rng.standard_normal(4)]
    ours = [Tensor(np.zeros(g.shape), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
    total = optim.clip_grad_norm_(ours, 1.5)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.5)
    np.testing.assert_allclose(total, ttotal.item())
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-6)


def test_clipping_without_torch(rng):
    p = Tensor(np.zeros(4), requires_grad=True)
    p.grad = np.array([3.0, 4.0, 0.0, 0.0])
    assert optim.clip_grad_norm_([p], 1.0) == pytest.approx(5.0)
    assert np.linalg.norm(p.grad) == pytest.approx(1.0, rel=1e-5)
    p.grad = np.array([3.0, -4.0, 0.5, 0.0])
    assert optim.clip_grad_norm_([p], 10.0, norm_type=math.inf) == 4.0
    optim.clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad, [1.0, -1.0, 0.5, 0.0])


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=0.9)),
                                           ("Adam", dict(lr=0.05)), ("AdamW", dict(lr=0.05))])
def test_fits_a_linear_model(rng, name, options):
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3
    model = nn.Linear(3, 1, rng=0)
    opt = getattr(optim, name)(model.parameters(), **options)
    for _ in range(300):
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
    assert model.weight.dtype == np.float32


def test_param_groups_and_errors():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.ones(2), np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ArgumentError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ArgumentError, match="lr must be >= 0"):
        optim.SGD([a], lr=-1)
    with pytest.raises(ArgumentError, match="Nesterov momentum needs momentum > 0"):
        optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ArgumentError, match=r"betas must be in \[0, 1\)"):
        optim.Adam([a], betas=(0.9, 1.0))
    with pytest.raises(ArgumentError, match="Tensors that require grad"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ArgumentError, match="step_size must be a positive int"):
        optim.StepLR(opt, 0)
    with pytest.raises(ArgumentError, match="takes an Optimizer"):
        optim.CosineAnnealingLR(object(), 3)
    with pytest.raises(ArgumentError, match="max_norm must be > 0"):
        optim.clip_grad_norm_([a], 0)
