"""sigconv.export.to_onnx: onnxruntime (the oracle) gives what sigconv gives, layer by layer
and for the demo's models, on inputs of two sizes; refusals, modes, bad input, atomic writes."""
import os
import subprocess
import sys

import numpy as np
import pytest

from sigconv import Ragged, nn
from sigconv.errors import ArgumentError, DTypeError, ExportError, ShapeError
from sigconv.export import to_onnx
from sigconv.models import Classifier, StructuredLabeller

from . import cases

onnx = pytest.importorskip("onnx", reason="onnx (the sigconv[onnx] extra) is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime, the oracle of exported models, "
                                                "is not installed (the test extra)")

TOL = 1e-5  # float32


def _spatial_axes(nd):
    return {"input": {0: "batch", **{a: f"axis{a}" for a in range(2, nd + 2)}}}


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def assert_runs_like_sigconv(module, xs, path, **options):
    """Export on ``xs[0]``, then onnxruntime's output on every ``x`` equals the module's."""
    proto = to_onnx(module, xs[0], path, **options)
    session = _session(path)
    for x in xs:
        expected = module(x).data
        got = session.run(None, {"input": x})[0]
        assert got.shape == expected.shape, x.shape
        np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL, err_msg=str(x.shape))
    return proto


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("name", [c[0] for c in cases.LAYER_CASES])
def test_each_layer_matches_onnxruntime(tmp_path, name, nd):
    module, sizes = cases.layer(name, nd)
    assert_runs_like_sigconv(module, cases.inputs(sizes), tmp_path / "layer.onnx",
                             dynamic_axes=_spatial_axes(nd))


@pytest.mark.parametrize("name", list(cases.MODELS))
def test_demo_models_match_onnxruntime_on_two_sizes(tmp_path, name):
    model, channels, sizes = cases.model(name)
    xs = cases.inputs(sizes, channels=channels)
    axes = None if len(sizes[0]) == 1 else _spatial_axes(len(sizes[0]))  # 1-D: the default
    assert_runs_like_sigconv(model, xs, tmp_path / "model.onnx", dynamic_axes=axes)
    if axes is None:  # the default makes the length dynamic: another batch size too
        x = cases.inputs([sizes[1]], channels=channels, batch=3)[0]
        np.testing.assert_allclose(_session(tmp_path / "model.onnx").run(None, {"input": x})[0],
                                   model(x).data, rtol=TOL, atol=TOL)


def test_encoder_decoder_decides_to_pool_per_input(tmp_path):
    """The encoder-decoder skips pooling where an axis has one sample: an If in the graph."""
    model, channels, _ = cases.model("demo 3-D encoder-decoder")
    proto = assert_runs_like_sigconv(model, cases.inputs([(8, 8, 8), (1, 6, 6), (2, 1, 9)],
                                                         channels=channels),
                                     tmp_path / "m.onnx", dynamic_axes=_spatial_axes(3))
    assert [n.op_type for n in proto.graph.node].count("If") == 1  # one pooling stage


def test_default_dynamic_axes_and_static_ones(tmp_path):
    model, _, _ = cases.model("demo 1-D classifier")
    proto = to_onnx(model, cases.inputs([(300,)], channels=1)[0], tmp_path / "a.onnx")

    def dims(value):
        return [d.dim_param or d.dim_value or None for d in value.type.tensor_type.shape.dim]

    assert dims(proto.graph.input[0]) == ["batch", 1, "length"]
    assert dims(proto.graph.output[0]) == ["batch", 3]
    volume, _, _ = cases.model("demo 3-D labeller")
    x = cases.inputs([(8, 8, 8)], channels=1)[0]
    proto = to_onnx(volume, x, tmp_path / "b.onnx")  # 3-D: only the batch is dynamic
    assert dims(proto.graph.input[0]) == ["batch", 1, 8, 8, 8]
    assert dims(proto.graph.output[0]) == ["batch", 4, 8, 8, 8]
    with pytest.raises(Exception, match="(?i)dimension|shape"):  # the file refuses another size
        _session(tmp_path / "b.onnx").run(None, {"input": cases.inputs([(8, 8, 9)], channels=1)[0]})
    proto = to_onnx(volume, x, tmp_path / "c.onnx", dynamic_axes={})
    assert dims(proto.graph.input[0]) == [2, 1, 8, 8, 8]
    proto = to_onnx(volume, x, tmp_path / "d.onnx",
                    dynamic_axes={"input": [0, 3], "output": {0: "n", 3: "h"}})
    assert dims(proto.graph.input[0]) == ["input_dynamic_axes_1", 1, 8, "input_dynamic_axes_2", 8]
    assert dims(proto.graph.output[0]) == ["n", 4, 8, "h", 8]  # shape inference: D, W static
    encoder_decoder, _, _ = cases.model("demo 3-D encoder-decoder")
    proto = to_onnx(encoder_decoder, x, tmp_path / "e.onnx", dynamic_axes=_spatial_axes(3))
    assert dims(proto.graph.output[0]) == ["batch", 1, None, None, None]  # unknown: not named


def test_initializers_are_the_state_dict_and_shared_weights_are_one(tmp_path):
    model = cases.randomise_norms(StructuredLabeller(1, 4, ndim=2, steps=4, rng=0)).eval()
    proto = to_onnx(model, np.zeros((1, 1, 9, 9), np.float32), tmp_path / "l.onnx")
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(inits[key], value, err_msg=key)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    uses = [n.input[1] for n in convs]
    assert uses.count("feedback_conv.weight") == 3 and uses.count("output_conv.weight") == 4
    assert uses.count("input_conv.weight") == 1  # U * X computed once, as in forward


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_opsets(tmp_path, opset):
    """Reduce ops take their axes as an attribute before opset 18, as an input from 18 on."""
    model = cases.randomise_norms(nn.Sequential(
        nn.Conv(2, 4, 3, ndim=2, rng=0), nn.GroupNorm(2, 4), nn.AdaptivePool((2, 3), "lp"),
        nn.LayerNorm(3), nn.Flatten(), nn.Linear(24, 3, rng=1))).eval()
    xs = cases.inputs([(9, 8), (12, 11)], channels=2)
    proto = assert_runs_like_sigconv(model, xs, tmp_path / "o.onnx", opset=opset,
                                     dynamic_axes=_spatial_axes(2))
    assert proto.opset_import[0].version == opset
    model, channels, _ = cases.model("demo 3-D encoder-decoder")  # ReduceMin in its If
    assert_runs_like_sigconv(model, cases.inputs([(4, 5, 6), (1, 5, 6)], channels=channels),
                             tmp_path / "e.onnx", opset=opset, dynamic_axes=_spatial_axes(3))


def test_float64_model_exports_in_float64(tmp_path):
    model = nn.Sequential(nn.GlobalPool("max"), nn.Linear(3, 2, dtype=np.float64, rng=0))
    x = np.random.default_rng(0).standard_normal((2, 3, 7))
    proto = assert_runs_like_sigconv(model, [x], tmp_path / "f.onnx")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    proto = assert_runs_like_sigconv(nn.Maxout(3), [x], tmp_path / "p.onnx")  # no parameters
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    mixed = nn.Sequential(nn.Conv(1, 2, 3, ndim=1), nn.Conv(2, 2, 3, ndim=1, dtype=np.float64))
    with pytest.raises(ExportError, match=r"mixes parameter dtypes.*astype"):
        to_onnx(mixed, np.zeros((1, 1, 8), np.float32), tmp_path / "g.onnx")


def test_exports_in_eval_mode_and_restores_the_modes(tmp_path):
    model = Classifier(1, 3, ndim=1, widths=(4, 8), dropout=0.5, rng=0)
    model.train()
    model.head.eval()  # a mixed state comes back as it was
    stats = model.state_dict()
    x = cases.inputs([(40,)], channels=1)[0]
    to_onnx(model, x, tmp_path / "m.onnx")
    assert [m.training for m in model.modules()] == [m is not model.head for m in model.modules()]
    for key, value in model.state_dict().items():  # no running statistic moved
        np.testing.assert_array_equal(value, stats[key], err_msg=key)
    model.eval()
    np.testing.assert_allclose(_session(tmp_path / "m.onnx").run(None, {"input": x})[0],
                               model(x).data, rtol=TOL, atol=TOL)
    model.train()
    model.features._modules["3"] = nn.LocalConv(4, 4, 3, ndim=1, input_size=20)
    with pytest.raises(ExportError):
        to_onnx(model, x, tmp_path / "n.onnx")
    assert all(m.training for m in model.modules())  # restored after a failure too


@pytest.mark.parametrize("layer, name", [
    (nn.LocalConv(4, 4, 3, ndim=1, input_size=20), "LocalConv"),
    (nn.TiledConv(4, 4, 3, ndim=1, tile=2), "TiledConv")])
def test_unshared_layers_are_refused_by_path(tmp_path, layer, name):
    model = Classifier(1, 3, ndim=1, widths=(4, 8), rng=0)
    model.features._modules["3"] = layer  # Conv, BatchNorm, ReLU, [3], Conv, ...
    target = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=rf"to_onnx cannot export features\.3 \({name}\): "
                                          r".*kernel"):
        to_onnx(model, np.zeros((1, 1, 40), np.float32), target)
    assert not target.exists()


class _Doubler(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv(1, 2, 3, ndim=1, rng=0)

    def forward(self, x):
        return self.conv(x) + self.conv(x)


class _ExportableDoubler(_Doubler):
    @staticmethod
    def _export_forward(module, ops, x):
        return ops.add(ops.child("conv", x), ops.child("conv", x))


class _ChangedConv(nn.Conv):
    def forward(self, x):
        return super().forward(x) * 2


def test_modules_without_rule_or_hook_are_refused_and_hooks_work(tmp_path):
    x = np.random.default_rng(0).standard_normal((2, 1, 10)).astype(np.float32)
    with pytest.raises(ExportError, match=r"the model \(_Doubler\): no export rule .* "
                                          r"_export_forward\(module, ops, x\)"):
        to_onnx(_Doubler(), x, tmp_path / "a.onnx")
    with pytest.raises(ExportError, match=r"1 \(_ChangedConv\): no export rule"):
        to_onnx(nn.Sequential(nn.ReLU(), _ChangedConv(1, 1, 3, ndim=1)), x, tmp_path / "b.onnx")

    class Changed(_ExportableDoubler):  # its forward is newer than the hook it inherits
        def forward(self, x):
            return self.conv(x)

    with pytest.raises(ExportError, match="no export rule"):
        to_onnx(Changed(), x, tmp_path / "c.onnx")
    assert_runs_like_sigconv(_ExportableDoubler(), [x], tmp_path / "d.onnx")


class _MisnamedHook(_Doubler):
    @staticmethod
    def _export_forward(module, ops, x):
        return ops.child("convolution", x)  # the submodule is "conv"


def test_empty_slots_and_misnamed_hook_children_are_refused(tmp_path):
    x = np.zeros((1, 1, 10), np.float32)
    model = nn.Sequential(nn.ReLU(), nn.ReLU())
    model._modules["1"] = None
    with pytest.raises(ExportError, match=r"to_onnx cannot export 1: the slot holds None"):
        to_onnx(model, x, tmp_path / "a.onnx")
    with pytest.raises(ExportError, match=r"has no submodule 'convolution'"):
        to_onnx(_MisnamedHook(), x, tmp_path / "b.onnx")
    assert not os.path.exists(tmp_path / "a.onnx") and not os.path.exists(tmp_path / "b.onnx")


def test_bad_input(tmp_path):
    model = Classifier(2, 3, ndim=2, widths=(4,), rng=0)
    x = np.zeros((1, 2, 8, 8), np.float32)
    target = tmp_path / "m.onnx"
    with pytest.raises(ArgumentError, match="to_onnx takes a sigconv.nn.Module, got str"):
        to_onnx("model.safetensors", x, target)
    with pytest.raises(ShapeError, match=r"does not fit the model: Conv with ndim=2 expects "
                                         r"input \(N, C, H, W\), got shape \(1, 2, 8\)"):
        to_onnx(model, np.zeros((1, 2, 8), np.float32), target)
    with pytest.raises(ShapeError, match="does not fit the model: Conv expects 2 input channels"):
        to_onnx(model, np.zeros((1, 3, 8, 8), np.float32), target)
    with pytest.raises(ShapeError, match=r"example must have shape \(N, C, \*spatial\) with 1 "
                                         r"to 3 spatial axes, got shape \(2, 8\)"):
        to_onnx(model, np.zeros((2, 8), np.float32), target)
    with pytest.raises(ShapeError, match="zero-length spatial axis"):
        to_onnx(model, np.zeros((1, 2, 0, 8), np.float32), target)
    with pytest.raises(ShapeError, match="at least one item"):
        to_onnx(model, np.zeros((0, 2, 8, 8), np.float32), target)
    with pytest.raises(ArgumentError, match="Ragged"):
        to_onnx(model, Ragged.from_list([np.zeros((2, 8, 8)), np.zeros((2, 9, 8))]), target)
    with pytest.raises(ArgumentError, match=r"example must be an array \(N, C, \*spatial\), got "
                                            r"NoneType"):
        to_onnx(model, None, target)
    with pytest.raises(DTypeError, match="example"):
        to_onnx(model, np.full((1, 2, 8, 8), "a"), target)
    with pytest.raises(ArgumentError, match="folder .*missing.* does not exist"):
        to_onnx(model, x, tmp_path / "missing" / "m.onnx")
    with pytest.raises(ArgumentError, match="it is a folder"):
        to_onnx(model, x, tmp_path)
    with pytest.raises(ArgumentError, match="path must be a file path"):
        to_onnx(model, x, 3)
    with pytest.raises(ArgumentError, match="opset must be"):
        to_onnx(model, x, target, opset=11)
    with pytest.raises(ArgumentError, match="opset must be"):
        to_onnx(model, x, target, opset="17")
    for axes, message in [([0], "must be a mapping"), ({"x": {0: "n"}}, "'input' and 'output'"),
                          ({"input": {1: "c"}}, "axis 1, the channels"),
                          ({"input": {4: "w"}}, "has 4 axes"),
                          ({"input": {0: 3}}, "non-empty name"),
                          ({"input": {-1: "w"}}, "axis must be"),
                          ({"input": "batch"}, "map axes to names or list axes"),
                          ({"output": {2: "x"}}, r"names axes \[2\], but the output has 2")]:
        with pytest.raises(ArgumentError, match=message):
            to_onnx(model, x, target, dynamic_axes=axes)
    assert not target.exists()


def test_written_atomically(tmp_path, monkeypatch):
    model = Classifier(1, 3, ndim=1, widths=(4,), rng=0).eval()
    target = tmp_path / "m.onnx"
    target.write_bytes(b"the previous model")
    model(np.zeros((1, 1, 16), np.float32))  # (its convolutions' tuning cache written before)

    def interrupted(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        to_onnx(model, np.zeros((1, 1, 16), np.float32), target)
    monkeypatch.undo()
    assert target.read_bytes() == b"the previous model"
    assert os.listdir(tmp_path) == ["m.onnx"]  # no temporary file left behind
    to_onnx(model, np.zeros((1, 1, 16), np.float32), target)
    assert onnx.load(str(target)).graph.input[0].name == "input"
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_importing_needs_neither_onnx_nor_torch():
    code = ("import sys, sigconv.export\n"
            "assert 'onnx' not in sys.modules and 'torch' not in sys.modules, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'torch'))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"needs the package 'onnx'.*pip install "
                                          r"'sigconv\[onnx\]'"):
        to_onnx(nn.ReLU(), np.zeros((1, 1, 4), np.float32), tmp_path / "m.onnx")
