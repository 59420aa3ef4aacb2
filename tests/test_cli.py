"""The ``sigconv`` command line as a user runs it: ``python -m sigconv ...`` in a child process
without PYTHONUNBUFFERED (users' machines do not set it), stdout and stderr read apart.

Two small runs are made once for the module, through the CLI itself: a classifier of a
dozen spoken digits (waveforms) and a denoiser of six generated NIfTI volumes.
"""
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time

import numpy as np
import pytest

import sigconv
from sigconv.train.tasks import TASKS

from .phantoms import blobs

#: The child's environment: this one without PYTHONUNBUFFERED, and without timing the two
#: kernel paths of every new convolution (seconds of each tiny run; the choice is by rule).
ENV = dict({k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
           SIGCONV_AUTOTUNE="0")


def sigconv_cli(*args, tty=False, timeout=600):
    """Run ``python -m sigconv ARGS``; ``(exit code, stdout, stderr)``.  With ``tty`` its
    stderr is a terminal (a pseudo-terminal), as in an interactive shell."""
    command = [sys.executable, "-m", "sigconv", *map(str, args)]
    if not tty:
        done = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=timeout)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    # 80 x 24, as a terminal window: a pseudo-terminal of no columns gets empty bars
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=ENV)
    os.close(follower)
    err, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            err += chunk
        elif child.poll() is not None:
            break
    out = child.stdout.read().decode()
    child.stdout.close()
    child.wait(timeout=60)
    os.close(leader)
    return child.returncode, out, err.decode(errors="replace")


def flat(text):
    """``text`` with every run of white space one space (help output is wrapped)."""
    return " ".join(text.split())


# -- the module's runs -------------------------------------------------------------------
@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def waveform_run(workspace, shared_data):
    """A classifier of twelve spoken digits (0 or 1) trained one epoch, through the CLI."""
    recordings = shared_data / "fsdd" / "recordings"
    source = workspace / "digits"
    for digit in ("0", "1"):
        (source / digit).mkdir(parents=True)
        for speaker in ("george", "jackson"):
            for take in range(3):
                name = f"{digit}_{speaker}_{take}.wav"
                (source / digit / name).write_bytes((recordings / name).read_bytes())
    store, run = workspace / "digits-store", workspace / "digits-run"
    code, _, err = sigconv_cli("prepare", source, store, "--kind", "waveform", "--quiet")
    assert code == 0, err
    trained = sigconv_cli("train", store, "--out", run, "--epochs", "1", "--batch-size", "8",
                          "--augment", "none")
    assert trained[0] == 0, trained[2]
    return {"run": run, "store": store, "train": trained,
            "wav": recordings / "1_theo_5.wav", "png": shared_data / "images" / "camera.png"}


#: The volumes' affine: 2 mm slices, 1.5 mm pixels, an origin away from 0 (RAS+).
AFFINE = np.array([[0, 0, 1.5, -12.0], [0, 1.5, 0, 7.0], [2.0, 0, 0, 30.0], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def volume_run(workspace):
    """A denoiser of five generated NIfTI volumes trained one epoch, through the CLI (no test
    split: no baseline filter to tune)."""
    nib = pytest.importorskip("nibabel")
    rng = np.random.default_rng(7)
    source = workspace / "volumes"
    source.mkdir()
    rows = ["path,label,split"]
    for i, split in enumerate(["train"] * 4 + ["validation"]):
        nib.save(nib.Nifti1Image(blobs(rng, (12, 16, 16), scale=100.0, dtype=np.float32), AFFINE), source / f"v{i}.nii.gz")
        rows.append(f"v{i}.nii.gz,phantom,{split}")
    (workspace / "volumes.csv").write_text("\n".join(rows) + "\n")
    new = workspace / "new.nii.gz"
    nib.save(nib.Nifti1Image(blobs(rng, (12, 16, 16), scale=100.0, dtype=np.float32), AFFINE), new)
    store, run = workspace / "volumes-store", workspace / "volumes-run"
    code, _, err = sigconv_cli("prepare", source, store, "--kind", "volume", "--labels",
                               workspace / "volumes.csv", "--quiet")
    assert code == 0, err
    code, _, err = sigconv_cli("train", store, "--out", run, "--task", "denoise", "--epochs", "1",
                               "--batch-size", "4", "--patch", "8", "--augment", "none",
                               "--quiet")
    assert code == 0, err
    return {"run": run, "store": store, "new": new}


# -- the program and its help ------------------------------------------------------------
def test_version_and_python_m_sigconv():
    code, out, err = sigconv_cli("--version")
    assert (code, out.strip()) == (0, f"sigconv {sigconv.__version__}")


def test_no_command_prints_the_help_on_stderr_and_exits_2():
    code, out, err = sigconv_cli()
    assert code == 2 and out == ""
    assert "usage: sigconv" in err and "commands:" in err and "predict" in err


def test_bad_usage_exits_2_on_stderr():
    code, out, err = sigconv_cli("trian")
    assert code == 2 and out == "" and "invalid choice: 'trian'" in err
    code, out, err = sigconv_cli("train", "store", "--out", "run", "--epochs", "0")
    assert code == 2 and "--epochs: expected a whole number >= 1, got '0'" in err


def test_top_level_help_is_plain_text_naming_every_command():
    code, out, _ = sigconv_cli("--help")
    assert code == 0
    assert "``" not in out and ":func:" not in out and ":mod:" not in out
    for command in ("info", "show", "prepare", "train", "evaluate", "predict", "demo", "edges"):
        assert f"    {command} " in out


def test_train_help_says_the_three_tasks_and_their_defaults():
    code, out, _ = sigconv_cli("train", "--help")
    text = flat(out)
    assert code == 0 and "train a classifier" not in text.lower()
    assert "classify items, denoise them, or label every sample" in text
    for name, task in TASKS.items():
        assert f"{task.epochs} to {name}" in text and f"{task.batch_size} to {name}" in text
        assert f"{task.lr:g} to {name}" in text
    assert "--seed SEED seeds the weights" in text and "(default: 0)" in text
    assert "--quiet" in text and "--threads N" in text


def test_prepare_help_shows_every_option_with_its_default():
    code, out, _ = sigconv_cli("prepare", "--help")
    text = flat(out)
    for option, default in (("--sample-rate HZ", "each file's own rate"),
                            ("--n-fft N_FFT", "512"), ("--hop-length HOP_LENGTH", "n_fft / 4"),
                            ("--n-mels N_MELS", "64"), ("--size H W", "keep each file's size"),
                            ("--spacing MM [MM ...]", "keep each file's spacing"),
                            ("--workers WORKERS", "1"), ("--spectrogram", "log-mel")):
        assert option in text and f"default: {default}" in text.rsplit(option, 1)[1][:300]
    assert "--mode {L,RGB,RGBA}" in text


def test_every_computing_command_takes_threads():
    from sigconv.cli import _parser

    commands = _parser()._subparsers._group_actions[0].choices
    for name in ("train", "evaluate", "predict", "demo", "prepare", "edges", "info"):
        assert "--threads" in commands[name]._option_string_actions, name
    code, out, err = sigconv_cli("train", "store", "--out", "run", "--threads", "0")
    assert code == 2 and "--threads: expected a whole number >= 1, got '0'" in err


def test_threads_hold_the_kernels_and_the_blas():
    code, out, err = sigconv_cli("info", "--cpu", "--threads", "1")
    assert code == 0, err
    assert "threads: 1" in out.splitlines() and ", 1 threads" in out


# -- prepare -----------------------------------------------------------------------------
def _images(folder, grey=("grey.png",), colour=("red.png", "blue.png")):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    (folder / "a").mkdir(parents=True)
    for name in grey:
        iio.imwrite(folder / "a" / name, rng.integers(0, 255, (20, 24), dtype=np.uint8))
    for name in colour:
        iio.imwrite(folder / "a" / name, rng.integers(0, 255, (20, 24, 3), dtype=np.uint8))


def _shapes(store):
    from sigconv.data import Store

    return sorted(tuple(r["shape"]) for r in Store(store).records)


def test_prepare_refuses_images_of_mixed_channels_and_says_the_fix(tmp_path):
    _images(tmp_path / "src")
    code, out, err = sigconv_cli("prepare", tmp_path / "src", tmp_path / "store", "--kind",
                                 "image")
    assert code == 2
    text = flat(err)
    assert "different channel counts" in text
    assert "3 channels: 2 items (a/blue.png, a/red.png)" in text
    assert "1 channel: 1 item (a/grey.png)" in text
    assert "--mode RGB or --mode L" in text
    # the option fixes it: the rerun prepares every file again with it
    code, _, err = sigconv_cli("prepare", tmp_path / "src", tmp_path / "store", "--kind", "image",
                               "--mode", "L", "--size", "10", "12")
    assert code == 0, err
    assert "3 prepared, 0 unchanged" in err
    assert _shapes(tmp_path / "store") == [(1, 10, 12)] * 3


def test_prepare_refuses_an_option_of_another_kind_before_reading(tmp_path):
    _images(tmp_path / "src")
    code, _, err = sigconv_cli("prepare", tmp_path / "src", tmp_path / "store", "--kind",
                               "image", "--spacing", "1.5")
    assert code == 2 and "spacing=1.5 is an option of volume items, not of image items" in err
    code, _, err = sigconv_cli("prepare", tmp_path / "src", tmp_path / "store", "--kind",
                               "image", "--n-mels", "40")
    assert code == 2 and "--n-mels is for --kind spectrogram, not --kind image" in err
    assert not (tmp_path / "store").exists()


def test_prepare_spectrogram_options_reach_the_items(tmp_path, shared_data):
    pytest.importorskip("librosa", reason="spectrograms need librosa (the audio extra)")
    from sigconv.data import Store

    (tmp_path / "src" / "0").mkdir(parents=True)
    for name in ("0_george_0.wav", "0_george_1.wav"):
        (tmp_path / "src" / "0" / name).write_bytes(
            (shared_data / "fsdd" / "recordings" / name).read_bytes())
    code, _, err = sigconv_cli("prepare", tmp_path / "src", tmp_path / "store", "--kind",
                               "spectrogram", "--sample-rate", "4000", "--n-fft", "256",
                               "--hop-length", "100", "--n-mels", "24", "--quiet")
    assert code == 0, err
    for array, record in Store(tmp_path / "store"):
        assert array.shape[:2] == (1, 24) and len(record["frequencies"]) == 24
        assert (record["sample_rate"], record["n_fft"], record["hop_length"]) == (4000, 256, 100)
        assert record["spectrogram"]["kind"] == "log-mel"


def test_prepare_spacing_resamples_volumes(tmp_path):
    nib = pytest.importorskip("nibabel")
    (tmp_path / "src").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((12, 16, 16), np.float32), AFFINE),
             tmp_path / "src" / "v.nii.gz")
    code, _, err = sigconv_cli("prepare", tmp_path / "src", tmp_path / "store", "--kind",
                               "volume", "--spacing", "3", "--quiet")
    assert code == 0, err
    assert _shapes(tmp_path / "store") == [(1, 8, 8, 8)]    # 12 x 2 mm, 16 x 1.5 mm -> 3 mm


# -- train, evaluate -----------------------------------------------------------------------
def test_train_output_in_a_log_has_no_progress_bars(waveform_run):
    code, out, err = waveform_run["train"]
    assert code == 0 and out.startswith("test: accuracy")
    assert "epoch 1: " in err                       # the one line per epoch stays
    assert "\r" not in err and "batch/s" not in err  # tqdm's bars do not fill the log


def test_evaluate_prints_the_scores_and_refuses_a_non_run(waveform_run, tmp_path):
    code, out, err = sigconv_cli("evaluate", waveform_run["run"], waveform_run["store"],
                                 "--split", "train", "--threads", "1")
    assert code == 0 and out.startswith("train: accuracy"), err
    code, out, err = sigconv_cli("evaluate", tmp_path, waveform_run["store"])
    assert code == 2 and out == "" and "not a run folder made by sigconv train" in err


# -- predict ---------------------------------------------------------------------------------
def test_predict_prints_a_class_per_file(waveform_run):
    code, out, err = sigconv_cli("predict", waveform_run["run"], waveform_run["wav"],
                                 waveform_run["wav"])
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [line[0] for line in lines] == [str(waveform_run["wav"])] * 2
    assert all(line[1] in ("0", "1") and 0.5 <= float(line[2]) <= 1 for line in lines)


def test_predict_names_the_kind_of_a_file_of_another_kind_before_any_answer(waveform_run):
    code, out, err = sigconv_cli("predict", waveform_run["run"], waveform_run["wav"],
                                 waveform_run["png"])
    assert code == 2 and out == ""                  # not even the good file was answered
    assert (f"this run was trained on waveform items; {waveform_run['png']} is an image"
            in err)
    assert "Traceback" not in err


def test_predict_shows_progress_on_a_terminal_and_not_with_quiet(waveform_run):
    code, out, err = sigconv_cli("predict", waveform_run["run"], waveform_run["wav"], tty=True)
    assert code == 0 and "predict: 100%" in err and "1/1" in err
    code, out, err = sigconv_cli("predict", waveform_run["run"], waveform_run["wav"], "--quiet",
                                 tty=True)
    assert code == 0 and "predict" not in err and out.count("\t") == 2


def test_predict_checks_its_arguments_before_reading_any_file(volume_run, tmp_path):
    missing = tmp_path / "missing.nii.gz"
    code, out, err = sigconv_cli("predict", volume_run["run"], volume_run["new"], missing)
    assert code == 2 and "gives an array per file; pass --out-dir" in err
    code, out, err = sigconv_cli("predict", volume_run["run"], volume_run["new"], "--out-dir",
                                 tmp_path / "out", "--batch-size", "0")
    assert code == 2 and "--batch-size: expected a whole number >= 1" in err
    # every file is read before the first is inferred: a bad last file leaves no output
    code, out, err = sigconv_cli("predict", volume_run["run"], volume_run["new"], missing,
                                 "--out-dir", tmp_path / "out")
    assert code == 2 and "missing.nii.gz" in err and out == ""
    assert not (tmp_path / "out").exists()


def test_predict_writes_nifti_with_the_inputs_affine(volume_run, tmp_path, monkeypatch):
    import nibabel as nib

    from sigconv.train import predict

    monkeypatch.setenv("SIGCONV_AUTOTUNE", "0")  # the child's kernel paths, for predict below

    out = tmp_path / "out"
    code, stdout, err = sigconv_cli("predict", volume_run["run"], volume_run["new"], "--out-dir",
                                    out, "--quiet")
    assert code == 0, err
    target = out / "new.nii.gz.nii.gz"
    assert stdout == f"{volume_run['new']}\t{target}\n"
    image = nib.load(target)
    np.testing.assert_allclose(image.affine, AFFINE)
    [(_, expected)] = predict(volume_run["run"], [volume_run["new"]])
    np.testing.assert_allclose(image.get_fdata(), expected[0], rtol=1e-5, atol=1e-3)
    # --format npy: the array as predict gives it
    code, stdout, err = sigconv_cli("predict", volume_run["run"], volume_run["new"], "--out-dir",
                                    out, "--format", "npy", "--quiet")
    assert code == 0, err
    np.testing.assert_allclose(np.load(out / "new.nii.gz.npy"), expected, rtol=1e-5, atol=1e-3)


def test_predict_refuses_formats_that_do_not_fit(volume_run, waveform_run, tmp_path):
    code, _, err = sigconv_cli("predict", waveform_run["run"], waveform_run["wav"], "--format",
                               "nifti")
    assert code == 2 and "this run classifies" in err
    code, _, err = sigconv_cli("predict", volume_run["run"], tmp_path / "x.nii.gz", "--out-dir",
                               tmp_path, "--format", "jpeg")
    assert code == 2 and "invalid choice: 'jpeg'" in err


def test_predict_warns_when_an_input_is_on_another_intensity_scale(volume_run, tmp_path):
    import nibabel as nib

    hounsfield = tmp_path / "hu.nii.gz"   # the training data were 0-200; this is 0-200 - 1000
    data = np.asarray(nib.load(volume_run["new"]).dataobj) * 5.0 - 1000.0
    nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), hounsfield)
    code, out, err = sigconv_cli("predict", volume_run["run"], hounsfield, "--out-dir",
                                 tmp_path / "out", "--quiet")
    assert code == 0, err
    assert f"sigconv predict: warning: {hounsfield}: its intensities" in err
    assert "far from the training data's" in err
    code, out, err = sigconv_cli("predict", volume_run["run"], volume_run["new"], "--out-dir",
                                 tmp_path / "out", "--quiet")
    assert code == 0 and "warning" not in err


# -- info ------------------------------------------------------------------------------------
def test_info_on_a_video_reads_its_header_without_decoding_frames(shared_data):
    video = shared_data / "video" / "cockatoo.mp4"
    code, out, err = sigconv_cli("info", video)
    assert code == 0, err
    for line in ("kind:     video", "shape:    (3, 280, 720, 1280)", "duration: 14.000 s",
                 "frame_rate: 20", "frames_in_file: 280", "codec:    h264",
                 "pixel_format: yuv444p"):
        assert line in out
    # in the process, nothing that decodes or converts frames runs, and it takes little time
    script = textwrap.dedent(f"""
        import sys, time
        import sigconv.io.video as video
        def decoding(*args, **kwargs):
            raise AssertionError("info decoded frames")
        video.load_video = video.iter_video = video._scale = decoding
        from sigconv.cli import main
        started = time.perf_counter()
        code = main(["info", {str(video)!r}])
        print("seconds", time.perf_counter() - started)
        sys.exit(code)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split("seconds")[1]) < 3.0  # decoding it all took 11 s


def test_info_of_a_missing_file_exits_2_on_stderr(tmp_path):
    code, out, err = sigconv_cli("info", tmp_path / "nothing.wav")
    assert code == 2 and out == "" and "nothing.wav" in err and "Traceback" not in err


# -- docs/cli.md -----------------------------------------------------------------------------
def test_docs_cli_names_every_command_and_option():
    """docs/cli.md is the reference: every command and every option of it is there."""
    from sigconv.cli import _parser

    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "cli.md"),
               encoding="utf-8").read()
    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert f"## sigconv {name}" in doc, name
        section = doc.split(f"## sigconv {name}", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}" in section, (name, flag)
        assert "```bash" in section, f"no example for {name}"
