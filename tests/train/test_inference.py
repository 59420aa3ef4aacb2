"""Using a trained run from Python: evaluate, load_inputs (its checks) and predict."""
import io
import warnings

import numpy as np
import pytest

from sigconv.data.sources import prepare_folder
from sigconv.errors import ArgumentError, IntensityWarning, ShapeError
from sigconv.train import evaluate, predict, train
from sigconv.train.inference import INTENSITY_LIMITS, _load_options, load_inputs

from ..phantoms import blobs


def _volume(rng, shape=(12, 16, 16)):
    return blobs(rng, shape, scale=100.0, dtype=np.float32)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A denoiser of four .npy volumes (kind "volume" in the records), one epoch; no test
    split, so that no baseline filter is tuned (seconds of non-local means)."""
    folder = tmp_path_factory.mktemp("inference")
    rng = np.random.default_rng(3)
    rows = ["path,label,split"]
    (folder / "src").mkdir()
    for i, split in enumerate(["train"] * 3 + ["validation"]):
        np.save(folder / "src" / f"v{i}.npy", _volume(rng))
        rows.append(f"v{i}.npy,x,{split}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    prepare_folder(folder / "src", folder / "store", kind="volume", labels=folder / "labels.csv",
                   progress=False)
    with pytest.MonkeyPatch.context() as patch:  # kernel paths by rule: no timing of each
        patch.setenv("SIGCONV_AUTOTUNE", "0")
        metrics = train(folder / "store", folder / "run", task="denoise", epochs=1,
                        batch_size=4, patch=8, augment="none", progress=False, log=None)
    np.save(folder / "new.npy", _volume(rng))
    return {"folder": folder, "run": folder / "run", "store": folder / "store",
            "new": folder / "new.npy", "history": metrics["history"]}


def test_evaluate_gives_the_runs_validation_score(run):
    scores = evaluate(run["run"], run["store"], split="validation")
    assert scores["psnr"] == pytest.approx(run["history"][-1]["validation_psnr"])
    with pytest.raises(ArgumentError, match="no items with split 'test'"):
        evaluate(run["run"], run["store"])


def test_load_inputs_refuses_a_file_of_another_kind(run, shared_data):
    png = shared_data / "images" / "camera.png"
    with pytest.raises(ArgumentError, match=f"this run was trained on volume items; {png} is an "
                                            "image: give it a volume file"):
        load_inputs(run["run"], [run["new"], png])


def test_load_inputs_refuses_other_channels(run):
    two = run["folder"] / "two.npy"
    np.save(two, np.stack([np.load(run["new"])] * 2))
    with pytest.raises(ShapeError, match=r"shape \(2, 12, 16, 16\), the model takes 1 channel "
                                         "and 3 spatial axes"):
        load_inputs(run["run"], [two])


def test_intensities_far_from_the_training_data_warn(run):
    far = run["folder"] / "far.npy"
    np.save(far, np.load(run["new"]) * 5 - 1000)        # another scale and offset
    with pytest.warns(IntensityWarning, match="far.npy: its intensities .* are far from the "
                                              "training data's"):
        [signal] = load_inputs(run["run"], [far])
    assert signal.path == str(far) and signal.kind == "volume"
    with warnings.catch_warnings():
        warnings.simplefilter("error", IntensityWarning)  # the training scale: no warning
        load_inputs(run["run"], [run["new"]])
    assert INTENSITY_LIMITS == {"mean_stds": 5.0, "std_ratio": 4.0}


def test_a_constant_input_is_far_too(run):
    flat = run["folder"] / "flat.npy"
    np.save(flat, np.full((12, 16, 16), 50.0, np.float32))  # no spread at all
    with pytest.warns(IntensityWarning, match="std 0"):
        load_inputs(run["run"], [flat])


def test_predict_takes_paths_or_loaded_signals_and_shows_progress(run):
    log = io.StringIO()
    by_path = predict(run["run"], [run["new"], run["new"]], progress=True, log=log)
    assert "predict" in log.getvalue() and "2/2" in log.getvalue()
    signals = load_inputs(run["run"], [run["new"]])
    [(path, array)] = predict(run["run"], signals)
    assert path == str(run["new"]) and array.shape == (1, 12, 16, 16)
    # the same answer (auto-tuning may time another kernel path in between: rounding only)
    np.testing.assert_allclose(array, by_path[0][1], rtol=1e-5, atol=1e-3)
    quiet = io.StringIO()
    predict(run["run"], [run["new"]], log=quiet)
    assert quiet.getvalue() == ""                      # no bar unless asked for


def test_the_converter_a_record_names_is_replayed():
    spec = {"kind": "image", "converter": {
        "function": "sigconv.data.sources.load_item",
        "options": {"kind": "image", "mode": "RGB", "size": [8, 8], "spacing": None}}}
    assert _load_options(spec) == ("image", {"mode": "RGB", "size": (8, 8), "spectrogram": None})
    spec = {"kind": "spectrogram", "sample_rate": 8000, "spectrogram": {"kind": "log-mel"}}
    assert _load_options(spec) == ("waveform", {"sample_rate": 8000,
                                                "spectrogram": {"kind": "log-mel"}})
    assert _load_options({}) == (None, {"spectrogram": None})
