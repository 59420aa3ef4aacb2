"""Module, Sequential and ModuleList: registration, naming, modes, state dicts."""
import numpy as np
import pytest

from sigconv import ArgumentError, DTypeError, ShapeError, nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv(1, 4, 3, ndim=2, bias=False), nn.BatchNorm(4),
                                      nn.ReLU())
        self.head = nn.Linear(4, 2)
        self.scale = 3  # a plain attribute

    def forward(self, x):
        return self.head(nn.functional.global_pool(self.features(x)))


def test_names_follow_pytorch():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "features.0.weight", "features.1.weight", "features.1.bias", "head.weight", "head.bias"]
    assert list(net.state_dict()) == [
        "features.0.weight", "features.1.weight", "features.1.bias", "features.1.running_mean",
        "features.1.running_var", "features.1.num_batches_tracked", "head.weight", "head.bias"]
    assert [n for n, _ in net.named_modules()][:3] == ["", "features", "features.0"]
    assert net.scale == 3 and net.features[0].bias is None


def test_state_dict_keys_equal_torch(torch):
    tnet = torch.nn.Module()
    tnet.features = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, bias=False),
                                        torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    tnet.head = torch.nn.Linear(4, 2)
    ours = Net().state_dict()
    theirs = tnet.state_dict()
    assert list(ours) == list(theirs)
    for key in ours:
        assert ours[key].shape == tuple(theirs[key].shape), key
        assert str(ours[key].dtype) == str(theirs[key].dtype).replace("torch.", ""), key


def test_state_dict_is_a_copy_and_loads_back(rng):
    a, b = Net(), Net()
    b.features[0].weight.data[:] = rng.standard_normal(b.features[0].weight.shape)
    state = b.state_dict()
    state["head.bias"][:] = 5  # a copy: b is unchanged
    assert not np.any(b.head.bias.data == 5)
    weight = a.features[0].weight
    missing, unexpected = a.load_state_dict(b.state_dict())
    assert missing == [] and unexpected == []
    assert a.features[0].weight is weight  # loaded in place: optimisers keep their references
    for key, value in b.state_dict().items():
        np.testing.assert_array_equal(a.state_dict()[key], value)


@pytest.mark.parametrize("edit, error, message", [
    (lambda s: s.pop("head.weight"), ArgumentError, r"missing keys \['head.weight'\]"),
    (lambda s: s.update(extra=np.ones(1)), ArgumentError, r"unexpected keys \['extra'\]"),
    (lambda s: s.update({"head.bias": np.ones(3, np.float32)}), ShapeError,
     r"state_dict\['head.bias'\] has shape \(3,\), the model expects \(2,\)"),
    (lambda s: s.update({"features.1.running_var": np.ones(4)}), DTypeError,
     r"state_dict\['features.1.running_var'\] has dtype float64, the model expects float32"),
    (lambda s: s.update({"head.bias": object()}), ShapeError, "head.bias"),
])
def test_load_state_dict_errors_name_the_key(edit, error, message):
    net = Net()
    before = net.state_dict()
    state = Net().state_dict()
    state["features.0.weight"][:] = 7
    edit(state)
    with pytest.raises(error, match=message):
        net.load_state_dict(state)
    # nothing was copied
    np.testing.assert_array_equal(net.state_dict()["features.0.weight"],
                                  before["features.0.weight"])


def test_non_strict_load_reports_keys():
    net = Net()
    state = Net().state_dict()
    state.pop("head.bias")
    state["other"] = np.ones(2)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert missing == ["head.bias"] and unexpected == ["other"]


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_astype_and_zero_grad(rng):
    net = Net().astype(np.float64)
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.features[1].running_mean.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype == np.int64
    out = net(rng.standard_normal((2, 1, 5, 5)))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(DTypeError, match="float32 or float64"):
        net.astype(np.int32)


def test_shared_parameters_listed_once():
    conv = nn.Conv(2, 2, 3, ndim=1)
    seq = nn.Sequential(conv, nn.ReLU(), conv)
    assert len(list(seq.parameters())) == 2


def test_containers():
    seq = nn.Sequential(nn.ReLU(), nn.Tanh())
    seq.append(nn.Sigmoid())
    assert len(seq) == 3 and isinstance(seq[1], nn.Tanh) and isinstance(seq[-1], nn.Sigmoid)
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    ml = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    with pytest.raises(ArgumentError, match="Sequential takes Modules, got int at position 1"):
        nn.Sequential(nn.ReLU(), 3)
    with pytest.raises(ArgumentError, match="ModuleList holds Modules"):
        ml.append("x")
    assert "Linear(in_features=2" in repr(ml)


def test_assignment_rules():
    lin = nn.Linear(2, 2)
    with pytest.raises(ArgumentError, match="'weight' is a parameter of Linear; assign a "
                                            "Parameter or None, not ndarray"):
        lin.weight = np.zeros((2, 2))
    lin.bias = None
    assert lin.bias is None and [n for n, _ in lin.named_parameters()] == ["weight"]

    class Forgot(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match=r"call Module.__init__\(\)"):
        Forgot()
    with pytest.raises(NotImplementedError, match="does not define forward"):
        nn.Module()(1)


def test_load_state_dict_refuses_a_ragged_value_by_key():
    # a Ragged value once reached .shape (an AttributeError)
    from sigconv import Ragged, Tensor
    layer = nn.Linear(2, 3)
    state = layer.state_dict()
    state["weight"] = Tensor(Ragged.from_list([np.ones((1, 2)), np.ones((1, 4))]))
    with pytest.raises(ArgumentError, match=r"state_dict\['weight'\] is a Ragged batch"):
        layer.load_state_dict(state)
