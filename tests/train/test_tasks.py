"""Dense tasks: denoising and labelling small phantoms, their scores, baselines and resume."""
import importlib.util
import json

import numpy as np
import pytest

from sigconv import checkpoint
from sigconv.cli import main
from sigconv.errors import ArgumentError, ShapeError
from sigconv.train import evaluate, load_model, predict, train
from sigconv.train.tasks import NLM_H, Denoising, Labelling, _Dice, _PSNR, _nl_means, task_of

from ..phantoms import blobs as _phantom, volume_store


def test_tallies_merged_from_parts_equal_the_tally_of_the_whole(rng):
    """What a cluster's workers return: each shard's tally, merged in shard order."""
    from sigconv.train.tasks import _Accuracy

    logits, labels = rng.standard_normal((9, 3)), rng.integers(0, 3, 9)
    output, target = rng.standard_normal((4, 1, 5, 5)), rng.standard_normal((4, 1, 5, 5))
    maps, classes = rng.standard_normal((4, 3, 5, 5)), rng.integers(0, 3, (4, 1, 5, 5))
    for make, x, y in ((lambda: _Accuracy(3), logits, labels),
                       (lambda: _PSNR({"std": [2.0], "peak": 10.0}), output, target),
                       (lambda: _Dice(3), maps, classes)):
        whole, merged, second = make(), make(), make()
        whole.add(x, y)
        merged.add(x[:3], y[:3])
        second.add(x[3:], y[3:])
        merged.merge(second)
        expected, got = whole.result(), merged.result()
        assert got.keys() == expected.keys()
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-12, err_msg=key)
    assert merged.count == whole.count > 0


@pytest.mark.parametrize("task_class", [Denoising, Labelling])
def test_dense_batches_are_made_from_their_plan_wherever_the_items_are_read(tmp_path, rng,
                                                                            task_class):
    """A plan's entries (item, region, noise seed) give the same batch read from another
    copy of the items (as a cluster's worker reads them), and the batches of ``batches``."""
    from sigconv.data import Store
    from sigconv.train.items import _items

    source = Store(volume_store(tmp_path, rng, with_labels=True))
    records = [r for r in source.records if r["split"] == "train"]
    arrays = [source[i][0] for i in range(len(records))]
    state = task_class.fit(arrays, records, {"patch": [8, 8, 8], "noise": 0.1})
    task = task_class(state, seed=3)
    data, copied = _items(task, source, records), _items(task, Store(source.path), records)
    plan = task.plan(data, 3, np.random.default_rng(7))
    batches = list(task.batches(data, 3, np.random.default_rng(7)))
    assert len(plan) == len(batches) > 1 and all(len(b) <= 3 for b in plan)
    assert all(isinstance(seed, int) and 0 <= index < len(data)
               for entries in plan for index, _, seed in entries)
    for entries, (x, y) in zip(plan, batches):
        x_again, y_again = task.assemble(copied.__getitem__, entries)
        np.testing.assert_array_equal(x_again.data, x.data)
        np.testing.assert_array_equal(y_again, y)
    noisy, clean = batches[0][0].data[0], task.assemble(
        data.__getitem__, plan[0][:1])[1][0]
    if task_class is Denoising:  # the input is the crop plus noise of 0.1 / std
        assert 0.5 < np.std(noisy - clean) / (0.1 / state["std"][0]) < 1.5


def test_the_task_is_told_from_the_records():
    assert task_of([{"label": 3}]).name == "classify"
    assert task_of([{"target_channels": 1}]).name == "label"
    assert task_of([{}], "denoise").name == "denoise"
    with pytest.raises(ArgumentError, match="cannot tell the task"):
        task_of([{}])
    with pytest.raises(ArgumentError, match="task must be one of"):
        task_of([{}], "segment")


def test_psnr_and_dice_tallies_match_their_formulas(rng):
    state = {"std": [2.0], "peak": 10.0}
    tally = _PSNR(state)
    output, target = rng.standard_normal((3, 1, 5, 5)), rng.standard_normal((3, 1, 5, 5))
    tally.add(output, target)
    mse = np.mean(((output - target) * 2.0) ** 2)  # back in the store's units
    assert tally.result()["psnr"] == pytest.approx(10 * np.log10(100 / mse))
    predicted = rng.integers(0, 3, 200)
    labels = rng.integers(0, 3, 200)
    dice = _Dice(3)
    dice.add_labels(predicted, labels)
    for k in (1, 2):
        p, t = predicted == k, labels == k
        expected = 2 * np.sum(p & t) / (p.sum() + t.sum())
        assert dice.result()["dice_per_class"][k] == pytest.approx(expected)
    assert dice.result()["dice"] == pytest.approx(np.mean(dice.result()["dice_per_class"][1:]))


def test_denoising_beats_the_noisy_input_and_reports_the_tuned_gaussian(tmp_path, rng):
    store = volume_store(tmp_path, rng, with_labels=False)
    metrics = train(store, tmp_path / "run", task="denoise", epochs=8, batch_size=4, patch=8,
                    noise=0.4, lr=5e-3, progress=False, log=None)
    test = metrics["test"]
    assert test["psnr_noisy"] == pytest.approx(20 * np.log10(2 / 0.4), abs=0.3)  # peak 2, sigma 0.4
    assert test["psnr"] > test["psnr_noisy"] + 2
    assert test["gaussian_sigma"] > 0.25 and test["psnr_gaussian"] > test["psnr_noisy"]
    if importlib.util.find_spec("skimage") is not None:  # the tuned non-local means baseline
        assert test["nlm_h"] in NLM_H and test["psnr_nlm"] > test["psnr_noisy"] + 2
    assert {"train_psnr", "validation_psnr"} <= set(metrics["history"][-1])
    # SSIM in the store's units (tests/train/test_metrics.py checks it against scikit-image);
    # it need not order like PSNR: this 8-epoch model is 3.6 dB over the noisy input and
    # below it in SSIM (0.57 against 0.62), while smoothing these flat blobs raises both
    assert 0 < test["ssim"] <= 1 and 0 < test["ssim_noisy"] < test["ssim_gaussian"] <= 1
    if "psnr_nlm" in test:
        assert test["ssim_noisy"] < test["ssim_nlm"] <= 1
    for name in ("curves.png", "kernels.png", "feature_maps.png", "example.png"):
        assert (tmp_path / "run" / name).read_bytes()[:4] == b"\x89PNG"
    # predict gives the denoised volume in the store's units, the input's shape
    volume = np.load(tmp_path / "v5.npy")
    [(path, denoised)] = predict(tmp_path / "run", [tmp_path / "v5.npy"])
    assert denoised.shape == volume.shape and abs(denoised.mean() - volume.mean()) < 0.3
    assert evaluate(tmp_path / "run", store)["psnr"] == pytest.approx(test["psnr"])


def test_labelling_learns_the_classes_and_reports_dice(tmp_path, rng):
    store = volume_store(tmp_path, rng, with_labels=True)
    metrics = train(store, tmp_path / "run", epochs=4, batch_size=4, patch=8, lr=1e-2,
                    progress=False, log=None)
    test = metrics["test"]
    assert len(test["dice_per_class"]) == 3
    assert test["dice"] > 0.6
    assert test["dice_threshold"] == pytest.approx(1.0)  # noiseless: thresholds are exact
    assert load_model(tmp_path / "run").classes == ["0", "1", "2"]
    out = tmp_path / "predicted"
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "v5.npy")]) == 2  # no --out-dir
    np.save(tmp_path / "input.npy", np.load(tmp_path / "v5.npy")[:1])
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "input.npy"),
                 "--out-dir", str(out)]) == 0
    assert np.load(out / "input.npy.npy").shape == (12, 16, 16)


def test_a_resumed_dense_run_ends_identical(tmp_path, rng):
    store = volume_store(tmp_path, rng, with_labels=False)
    options = dict(task="denoise", epochs=2, batch_size=4, patch=8, progress=False, log=None)
    whole = train(store, tmp_path / "whole", **options)
    train(store, tmp_path / "parts", stop_after=1, **options)
    resumed = train(store, tmp_path / "parts", resume=True, **options)
    a = checkpoint.load(tmp_path / "whole" / "checkpoint.safetensors")
    b = checkpoint.load(tmp_path / "parts" / "checkpoint.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert whole["test"] == resumed["test"]


def test_bad_dense_options_are_refused(tmp_path, rng):
    store = volume_store(tmp_path, rng, with_labels=False)
    with pytest.raises(ArgumentError, match="patch must be"):
        train(store, tmp_path / "a", task="denoise", patch=(8, 8), progress=False, log=None)
    with pytest.raises(ArgumentError, match="noise must be"):
        train(store, tmp_path / "b", task="denoise", noise=-1.0, progress=False, log=None)
    with pytest.raises(ArgumentError, match="does not do task"):
        train(store, tmp_path / "c", task="denoise", model="classifier", progress=False,
              log=None)
    with pytest.raises(ArgumentError, match="label channel|target_channels"):
        train(store, tmp_path / "d", task="label", progress=False, log=None)
    assert json.dumps(Denoising.models) and Labelling.models[0] == "labeller"


def test_predict_out_dir_gives_inputs_of_one_name_their_own_outputs(tmp_path, rng, capsys):
    """Two inputs called input.npy from different folders used to overwrite one output."""
    import os

    store = volume_store(tmp_path, rng, with_labels=False)
    train(store, tmp_path / "run", task="denoise", epochs=1, batch_size=4, patch=8,
          progress=False, log=None)
    inputs = []
    for folder, k in (("a", 4), ("b", 5)):
        (tmp_path / "in" / folder).mkdir(parents=True)
        inputs.append(tmp_path / "in" / folder / "input.npy")
        np.save(inputs[-1], np.load(tmp_path / f"v{k}.npy"))
    out = tmp_path / "predicted"
    old = os.umask(0o022)
    try:
        assert main(["predict", str(tmp_path / "run")] + [str(p) for p in inputs] +
                    ["--out-dir", str(out)]) == 0
    finally:
        os.umask(old)
    targets = [out / "a" / "input.npy.npy", out / "b" / "input.npy.npy"]
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"{p}\t{t}" for p, t in zip(inputs, targets)]
    expected = predict(tmp_path / "run", inputs)
    for target, (_, array) in zip(targets, expected):
        np.testing.assert_array_equal(np.load(target), array)
        assert target.stat().st_mode & 0o777 == 0o644
    assert not np.array_equal(np.load(targets[0]), np.load(targets[1]))


def test_non_local_means_is_scikit_images_filter_tuned_on_the_training_items(rng):
    pytest.importorskip("skimage")
    from skimage.restoration import denoise_nl_means

    clean = _phantom(rng, (12, 16, 16))[None]
    noisy = (clean + 0.3 * rng.standard_normal(clean.shape)).astype(np.float32)
    got = _nl_means(noisy, 0.24, 0.3)
    want = denoise_nl_means(noisy[0].astype(np.float64), h=0.24, sigma=0.3, fast_mode=True,
                            patch_size=5, patch_distance=6)
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-6)
    assert np.mean((got - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)


def test_a_store_the_task_cannot_learn_from_is_refused_before_training(tmp_path, rng):
    from tests.train.test_loop import _waveform_store

    waves = _waveform_store(tmp_path, rng)
    for task in ("denoise", "label"):
        message = (r"needs an explicit patch .* 32 samples per axis is sized for images and "
                   r"volumes, and on waveform items it is 32 time steps = 4 ms at 8000 Hz; "
                   r"the median training item is \(\d+,\) samples" if task == "denoise"
                   else "last channel holds the labels .*target_channels == 1")
        with pytest.raises(ArgumentError, match=message):
            train(waves, tmp_path / "refused", task=task, progress=False, log=None)
    assert not (tmp_path / "refused").exists()                   # nothing was created
    from sigconv.data import Store

    records = Store(waves).records
    Denoising.check_records(records, [], {"patch": 2048})         # a patch given: accepted
    plain = volume_store(tmp_path, rng, with_labels=False)
    with pytest.raises(ArgumentError, match=r"classification needs a 'label' in every record; "
                                            r"6 of 6 have none .*task='denoise'"):
        train(plain, tmp_path / "refused", task="classify", progress=False, log=None)
    Denoising.check_records(Store(plain).records, [], {})          # volumes: the default patch
    one_class = [{"id": "a", "label": 1, "split": "train"}, {"id": "b", "label": 1}]
    with pytest.raises(ArgumentError, match="two classes or more; every training item has "
                                            "the label 1"):
        task_of(one_class, "classify").check_records(one_class, [], {})
    train_records = [{"id": "a", "label": 0}, {"id": "b", "label": 1}]
    with pytest.raises(ArgumentError, match="test item 'c' has the label 2, which no training "
                                            r"item has \(training classes: \[0, 1\]\)"):
        task_of(train_records).check_records(train_records, [{"id": "c", "label": 2,
                                                              "split": "test"}], {})
    narrow = [{"id": "n", "target_channels": 1, "shape": [1, 8, 8]}]
    with pytest.raises(ArgumentError, match="at least one input channel before the label"):
        Labelling.check_records(narrow, [], {})


def test_a_model_of_yours_denoises(tmp_path, rng):
    from sigconv import nn

    store = volume_store(tmp_path, rng, with_labels=False)
    net = nn.Sequential(nn.Conv(1, 8, 3, ndim=3, rng=0), nn.ReLU(), nn.Conv(8, 1, 3, ndim=3,
                                                                           rng=1))
    metrics = train(store, tmp_path / "run", task="denoise", model=nn.Residual(net), epochs=3,
                    stop_after=2, batch_size=4, patch=8, noise=0.4, lr=5e-3, progress=False,
                    log=None)
    first, second = metrics["history"]
    assert second["train_loss"] < first["train_loss"] and np.isfinite(second["validation_psnr"])
    with pytest.raises(ShapeError, match=r"task 'denoise' needs one output of shape \(1, 8, 8, "
                                         r"8\) per item \(the input's channels"):
        train(store, tmp_path / "wide", task="denoise", model=nn.Conv(1, 2, 3, ndim=3),
              epochs=1, batch_size=4, patch=8, progress=False, log=None)


def test_the_dense_fit_reads_one_item_at_a_time(tmp_path, rng):
    """Denoising.fit over a memory-mapped store: the formulas' mean, std and range, while
    holding about one item in float64 at a time (tracemalloc), not the training set."""
    import tracemalloc

    from sigconv.data import Source, Store, convert_npy, prepare

    sources = []
    for i in range(8):
        np.save(tmp_path / f"v{i}.npy", (rng.standard_normal((1, 48, 48, 48)) * (i + 1)
                                          + i).astype(np.float32))
        sources.append(Source(f"v{i}", str(tmp_path / f"v{i}.npy"), {"split": "train"}))
    prepare(sources, tmp_path / "store", convert_npy, progress=False, log=None)
    store = Store(tmp_path / "store")
    arrays = [store[i][0] for i in range(len(store))]
    item_bytes = 48 ** 3 * 8  # one item in float64
    tracemalloc.start()
    state = Denoising.fit(arrays, store.records, {"patch": [8, 8, 8]})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * item_bytes < 8 * item_bytes
    everything = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])
    assert state["mean"][0] == pytest.approx(everything.mean(), rel=1e-12)
    assert state["std"][0] == pytest.approx(everything.std(), rel=1e-9)
    assert state["peak"] == pytest.approx(everything.max() - everything.min(), rel=1e-12)
