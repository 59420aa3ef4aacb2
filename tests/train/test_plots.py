"""The run's pictures: what each figure shows (asserted on the Figure) and plot_run's files."""
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the run's plots need matplotlib (the plot extra)")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from matplotlib.layout_engine import ConstrainedLayoutEngine  # noqa: E402

from sigconv import nn  # noqa: E402
from sigconv.errors import ArgumentError, ShapeError  # noqa: E402
from sigconv.train import plots  # noqa: E402
from sigconv.train.tasks import Classification, Denoising, Labelling, _build  # noqa: E402


def _images(fig):
    return [image for ax in fig.axes for image in ax.get_images()]


def _colour_bars(fig):
    return [image.colorbar for image in _images(fig) if image.colorbar is not None]


def _fits(fig):
    """Whether everything drawn (titles, labels, colour bars) lies inside the figure."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    drawn = fig.get_tightbbox(canvas.get_renderer())          # inches
    width, height = fig.get_size_inches()
    return drawn.x0 >= -0.01 and drawn.y0 >= -0.01 and drawn.x1 <= width + 0.01 and \
        drawn.y1 <= height + 0.01


# -- confusion ---------------------------------------------------------------

def test_confusion_has_class_names_at_integer_cell_centres_and_readable_counts():
    confusion = np.array([[9, 1, 0], [0, 7, 3], [2, 0, 8]])
    fig = plots.confusion_figure(confusion, ["low tone", "high tone", "chirp"], accuracy=0.8)
    ax = fig.axes[0]
    for ticks, labels in ((ax.get_xticks(), ax.get_xticklabels()),
                          (ax.get_yticks(), ax.get_yticklabels())):
        assert list(ticks) == [0, 1, 2]
        assert [t.get_text() for t in labels] == ["low tone", "high tone", "chirp"]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert "accuracy 0.800" in ax.get_title()
    assert len(_colour_bars(fig)) == 1
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert {k: int(t.get_text()) for k, t in cells.items()} == \
        {(i, j): int(v) for (i, j), v in np.ndenumerate(confusion)}
    assert cells[(0, 0)].get_color() == "white"       # the darkest cell
    assert cells[(0, 2)].get_color() == "black"       # an empty (white) cell
    assert _fits(fig)


def test_confusion_labels_turn_when_long_or_many_and_fall_back_to_indices():
    short = plots.confusion_figure(np.eye(10, dtype=int), [str(k) for k in range(10)])
    assert short.axes[0].get_xticklabels()[0].get_rotation() == 0
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"]
    long = plots.confusion_figure(np.eye(8, dtype=int), names)
    assert long.axes[0].get_xticklabels()[0].get_rotation() == 45
    assert _fits(long)
    wrong = plots.confusion_figure(np.eye(3, dtype=int), ["a", "b"])   # 2 names, 3 classes
    assert [t.get_text() for t in wrong.axes[0].get_xticklabels()] == ["0", "1", "2"]


@pytest.mark.parametrize("confusion", [np.zeros((2, 3)), np.zeros(4), np.zeros((0, 0))])
def test_confusion_refuses_what_is_not_a_square_matrix(confusion):
    with pytest.raises(ShapeError, match=r"square \(classes, classes\).*got an array of shape"):
        plots.confusion_figure(confusion)


# -- kernels and feature maps ------------------------------------------------

def _single_norm(images):
    limits = {(image.norm.vmin, image.norm.vmax) for image in images}
    assert len(limits) == 1
    return limits.pop()


def test_1d_kernels_are_one_heat_map_on_a_symmetric_scale(rng):
    weight = rng.standard_normal((32, 1, 9))
    fig = plots.kernels_figure(weight, "first convolution (features.0)")
    [image] = _images(fig)
    assert image.get_array().shape == (32, 9)             # kernel x tap
    assert not [line for ax in fig.axes for line in ax.get_lines()]
    low, high = _single_norm([image])
    assert -low == high == pytest.approx(np.abs(weight).max())
    assert len(_colour_bars(fig)) == 1
    assert "features.0" in fig.get_suptitle() and "9 taps" in fig.get_suptitle()
    assert _fits(fig)


def test_1d_kernels_of_many_input_channels_show_the_first_ones_on_one_scale(rng):
    weight = rng.standard_normal((16, 20, 5))
    fig = plots.kernels_figure(weight)
    images = _images(fig)
    assert len(images) == plots.MAX_INPUT_CHANNELS
    low, high = _single_norm(images)
    assert high == pytest.approx(np.abs(weight[:, :plots.MAX_INPUT_CHANNELS]).max())
    assert "input channels 0-3 of 20" in fig.get_suptitle()


def test_2d_and_3d_kernels_share_one_scale_and_name_each_panel(rng):
    weight = rng.standard_normal((6, 3, 3, 3))
    fig = plots.kernels_figure(weight)
    images = _images(fig)
    assert len(images) == 18
    assert _single_norm(images)[1] == pytest.approx(np.abs(weight).max())
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles[:4] == ["kernel 0, in 0", "kernel 0, in 1", "kernel 0, in 2", "kernel 1, in 0"]
    assert len(_colour_bars(fig)) == 1
    volume = rng.standard_normal((4, 1, 3, 3, 3))
    fig = plots.kernels_figure(volume)
    montage = _images(fig)[0].get_array()
    assert montage.shape == (3, 3 * 3 + 2)                 # depth slices, a gap between
    assert np.allclose(montage[:, 4:7], volume[0, 0, 1])
    assert montage.mask[:, 3].all()                        # the gap is blank
    assert "3 depth slices" in fig.get_suptitle()
    assert _fits(fig)


def test_kernels_refuse_a_weight_without_kernel_axes():
    with pytest.raises(ShapeError, match=r"weight must be \(C_out, C_in, \*kernel\).*\(4, 2\)"):
        plots.kernels_figure(np.zeros((4, 2)))


def test_feature_maps_have_colour_bars_and_one_symmetric_scale(rng):
    x, maps = rng.standard_normal((1, 6, 10, 12)), rng.standard_normal((8, 6, 10, 12))
    fig = plots.feature_maps_figure(x, maps)
    [source] = [ax.get_images()[0] for ax in fig.axes if ax.get_title() == "input"]
    outputs = [image for image in _images(fig) if image is not source]
    assert source.get_array().shape == (10, 12)           # the input's middle slice
    assert len(outputs) == 8
    middle = maps[:, 3]
    assert _single_norm(outputs)[1] == pytest.approx(np.abs(middle).max())
    assert len(_colour_bars(fig)) == 2                     # the input's and the outputs'
    assert "middle slice: depth 3 of 6" in fig.get_suptitle()
    assert [o.axes.get_title() for o in outputs] == [f"channel {c}" for c in range(8)]
    signal = plots.feature_maps_figure(rng.standard_normal((1, 200)),
                                       rng.standard_normal((16, 200)))
    [heat] = _images(signal)
    assert heat.get_array().shape == (16, 200) and len(_colour_bars(signal)) == 1
    with pytest.raises(ShapeError, match="maps must be"):
        plots.feature_maps_figure(x, maps[:, 0])


# -- example -----------------------------------------------------------------

def test_denoising_example_shares_one_intensity_scale_and_names_the_slice(rng):
    clean = rng.standard_normal((8, 16, 24))
    noisy, output = clean + rng.standard_normal(clean.shape), 0.5 * clean
    fig = plots.example_figure(noisy, output, clean)
    images = _images(fig)
    assert len(images) == 3 and len(_colour_bars(fig)) == 1
    low, high = _single_norm(images)
    pooled = np.concatenate([a[4].ravel() for a in (noisy, output, clean)])
    assert (low, high) == pytest.approx(tuple(np.percentile(pooled, [1, 99])))
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "output", "target"]
    assert "middle slice: depth 4 of 8" in fig.get_suptitle()
    assert isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    assert _fits(fig)


def test_labelling_example_colours_classes_and_names_them(rng):
    target = rng.integers(0, 3, (12, 20))
    output = np.where(rng.random(target.shape) < 0.9, target, 0)
    fig = plots.example_figure(rng.standard_normal(target.shape), output, target,
                               classes=["background", "vessel", "stent"])
    images = _images(fig)
    assert images[1].norm is images[2].norm or \
        (images[1].norm.boundaries == images[2].norm.boundaries).all()
    assert images[1].cmap.N == 3
    bar = [bar for bar in _colour_bars(fig) if bar.ax.get_ylabel() == "class"][0]
    assert [t.get_text() for t in bar.ax.get_yticklabels()] == ["background", "vessel", "stent"]
    assert _fits(fig)


def test_1d_example_draws_lines_on_the_same_y_limits(rng):
    clean = np.sin(np.arange(300) / 15)
    fig = plots.example_figure(clean + 0.5 * rng.standard_normal(300), 0.9 * clean, clean)
    top, bottom = fig.axes
    assert not _images(fig)
    assert [line.get_label() for line in bottom.get_lines()] == ["target", "output"]
    assert top.get_ylim() == bottom.get_ylim()
    with pytest.raises(ShapeError, match="one shape"):
        plots.example_figure(clean, clean[:10], clean)


# -- curves ------------------------------------------------------------------

def _history(losses, rates=None, metric="psnr"):
    rates = rates or [1e-3] * len(losses)
    return [{"epoch": e + 1, "lr": r, "train_loss": loss, "validation_loss": loss * 1.1,
             f"train_{metric}": 20.0 + e, f"validation_{metric}": 19.0 + e}
            for e, (loss, r) in enumerate(zip(losses, rates))]


def test_curves_use_a_log_loss_axis_over_decades_and_whole_epochs():
    fig = plots.curves_figure(_history([3.0, 0.5, 0.05, 0.01], [1e-3, 1e-4, 1e-5, 1e-6]), "psnr",
                              {"psnr": 24.0, "loss": 0.02})
    loss, score, rate = fig.axes
    assert loss.get_yscale() == "log" and rate.get_yscale() == "log"
    assert score.get_ylabel() == "PSNR (dB)"
    assert list(loss.get_xticks()) == [1, 2, 3, 4]
    [legend] = fig.legends                                         # beside the data, not on it
    assert [t.get_text() for t in legend.get_texts()] == \
        ["train", "validation", "test (best model)"]
    assert not any(ax.get_legend() for ax in fig.axes)
    assert _fits(fig)
    flat = plots.curves_figure(_history([1.0, 0.8]), "psnr")
    assert flat.axes[0].get_yscale() == "linear"
    single = plots.curves_figure(_history([1.0]), "psnr")
    assert list(single.axes[0].get_xticks()) == [1]                # not 0.96, 0.98, ...
    with pytest.raises(ArgumentError, match="history must be a non-empty list"):
        plots.curves_figure([], "psnr")


# -- plot_run ----------------------------------------------------------------

def _check_pngs(paths, names):
    assert [p.rsplit("/", 1)[-1] for p in paths] == names
    for path in paths:
        picture = imread(path)
        assert picture.ndim == 3 and min(picture.shape[:2]) > 100


@pytest.fixture
def drawn(monkeypatch):
    """The figures plot_run saves, by file name (they are still written)."""
    figures = {}
    save = plots._save_figure

    def keep(fig, path):
        figures[path.rsplit("/", 1)[-1]] = fig
        save(fig, path)

    monkeypatch.setattr(plots, "_save_figure", keep)
    return figures


def test_plot_run_writes_a_classifiers_pictures_with_its_class_names(tmp_path, rng, drawn):
    for ndim, shape in ((1, (1, 120)), (2, (2, 12, 14))):
        task = Classification({"classes": ["cat", "dog", "fox"], "model": "classifier"})
        model = _build("classifier", shape[0], 3, ndim, 0)
        test = {"accuracy": 0.5, "loss": 0.9, "confusion": [[2, 1, 0], [0, 1, 1], [1, 0, 2]]}
        out = tmp_path / f"run{ndim}"
        out.mkdir()
        example = (rng.standard_normal(shape).astype(np.float32), 1)
        written = plots.plot_run(str(out), _history([1.0, 0.7], metric="accuracy"), test,
                                 model, "accuracy", example, task)
        _check_pngs(written, ["curves.png", "confusion.png", "kernels.png",
                              "feature_maps.png"])
        confusion = drawn["confusion.png"].axes[0]
        assert [t.get_text() for t in confusion.get_xticklabels()] == ["cat", "dog", "fox"]
        assert "features.0" in drawn["kernels.png"].get_suptitle()


def _phantoms(rng, labelled):
    volume = (rng.random((8, 12, 12)) > 0.6).astype(np.float32)
    return [np.stack([volume, volume]) if labelled else volume[None] for _ in range(2)]


@pytest.mark.parametrize("task_class", [Denoising, Labelling])
def test_plot_run_writes_a_dense_runs_pictures_with_an_example(tmp_path, rng, task_class,
                                                               drawn):
    labelled = task_class is Labelling
    arrays = _phantoms(rng, labelled)
    records = [{"target_channels": 1} if labelled else {} for _ in arrays]
    state = task_class.fit(arrays, records, {"patch": 8, "noise": 0.2})
    state["model"] = "encoder-decoder"
    task = task_class(state)
    model = task.model(1, 3, 0)
    example = task.split_item(arrays[0], records[0])
    written = plots.plot_run(str(tmp_path), _history([1.0, 0.5], metric=task.metric), {},
                             model, task.metric, example, task)
    _check_pngs(written, ["curves.png", "kernels.png", "feature_maps.png", "example.png"])
    # the feature maps are of what the model is given: the noisy item for denoising
    noisy = task.evaluation_inputs([example])[0][0]
    [source] = [ax.get_images()[0] for ax in drawn["feature_maps.png"].axes
                if ax.get_title() == "input"]
    assert np.array_equal(source.get_array(), noisy[4])
    assert labelled or not np.array_equal(noisy, example[0][0])
    example_images = _images(drawn["example.png"])
    assert "middle slice: depth 4 of 8" in drawn["example.png"].get_suptitle()
    if labelled:  # the classes the task found, named on the colour bar
        [bar] = [b for b in _colour_bars(drawn["example.png"]) if b.ax.get_ylabel() == "class"]
        assert [t.get_text() for t in bar.ax.get_yticklabels()] == state["classes"]
    else:
        _single_norm(example_images)


def test_plot_run_draws_what_it_can_and_nothing_without_matplotlib(tmp_path, monkeypatch):
    no_conv = nn.Sequential(nn.Linear(4, 2))
    written = plots.plot_run(str(tmp_path), _history([1.0]), {}, no_conv, "psnr")
    _check_pngs(written, ["curves.png"])
    monkeypatch.setitem(sys.modules, "matplotlib", None)        # as if not installed
    assert plots.plot_run(str(tmp_path), _history([1.0]), {}, no_conv, "psnr") == []
