"""The ``sigconv`` command line (also ``python -m sigconv``).

Every command exits 0 when it did its work; 2 for bad usage or input (an
unknown option, a missing file, a file of the wrong kind: refused before
anything is computed) and when sigconv cannot go on (a run folder in use, a
loss that became NaN); 1 when the machine failed it (a file that could not be
written) or, for ``prepare``, when some sources could not be prepared; 130
when interrupted.  Every message goes to stderr.  Progress bars go to stderr, and only when
it is a terminal (``--quiet`` turns them off there too); results go to
stdout.  See docs/cli.md.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .io import Signal
    from .typing import PathLike, SignalKind

_Number = TypeVar("_Number", int, float)

__all__ = ["main"]

#: What ``sigconv --help`` says before the list of commands (plain text, as printed).
DESCRIPTION = """\
sigconv: convolutional networks on 1-D, 2-D and 3-D signals on the CPU (audio,
spectrograms, skeletons, images, CT volumes, video).

A typical session: look at a file (info, show), prepare a folder of files into
a store (prepare), train a model on it (train), then score the model on a split
(evaluate) or answer for new files (predict)."""

EPILOG = """\
examples:
  sigconv info ../shared/data/volumes/ct_slice.dcm
  sigconv prepare photos/ prepared/photos --kind image --mode RGB
  sigconv train prepared/photos --out runs/photos
  sigconv predict runs/photos new.png

Run 'sigconv COMMAND --help' for a command's options; docs/cli.md has them all."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's default shown, unless it has none (None,
    False) or its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.default is None or action.default is argparse.SUPPRESS
                or isinstance(action.default, bool) or "default" in text
                or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


class _UsageError(Exception):
    """Bad usage found by a command itself (after argparse): exit 2 with this message."""


def _number(parse: Callable[[str], _Number], low: float,
            what: str) -> Callable[[str], _Number]:
    """An argparse type: ``parse(text)``, refused unless it is ``what`` and ``>= low``."""
    def checked(text: str) -> _Number:
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not low <= value < float("inf"):  # NaN fails the comparison
            raise argparse.ArgumentTypeError(f"expected {what} >= {low}, got {text!r}")
        return value
    return checked


_positive_int = _number(int, 1, "a whole number")
_nonnegative_int = _number(int, 0, "a whole number")
_nonnegative_float = _number(float, 0, "a finite number")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


# -- options several commands share ----------------------------------------------
def _add_compute_options(parser: argparse.ArgumentParser, quiet: bool = True) -> None:
    """``--threads`` (and ``--quiet``) of a command that computes."""
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                        help="threads for sigconv's kernels and the BLAS they call (OpenMP "
                             "and BLAS pools, and worker processes' OMP_NUM_THREADS / "
                             "OPENBLAS_NUM_THREADS; default: every core)")
    if quiet:
        parser.add_argument("--quiet", action="store_true",
                            help="no progress bars (they are shown only when stderr is a "
                                 "terminal anyway; messages and results stay)")


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Hold sigconv's OpenMP threads and the BLAS to ``count`` threads (None: leave them),
    here and in the worker processes this command starts."""
    if count is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(count)  # read by the libraries of spawned workers
    with threadpool_limits(limits=count):
        yield


def _progress(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: stderr is a terminal and ``--quiet`` was not given
    (as tqdm's ``disable=None``; logs and pipes get no carriage-return updates)."""
    if getattr(args, "quiet", False):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _warned(command: str, caught: Sequence[warnings.WarningMessage]) -> None:
    """Print warnings caught while running ``command`` as ``sigconv COMMAND: warning: ...``."""
    for warning in caught:
        print(f"sigconv {command}: warning: {warning.message}", file=sys.stderr)


# -- edges, info, show ------------------------------------------------------------
def _edges(args: argparse.Namespace) -> int:
    import imageio.v3 as iio
    import numpy as np

    from .demos import edge_detection

    try:
        image = iio.imread(args.image)
    except (OSError, ValueError) as exc:
        raise _UsageError(f"cannot read image {args.image!r}: {exc}") from None
    edges, costs = edge_detection(image)
    conv, dense = costs["conv"], costs["dense"]
    print(f"edge map: {edges.shape[0]} x {edges.shape[1]} (rows x columns)")
    print(f"convolution: {conv.parameters} weights, {conv.flops:,} floating-point operations")
    print(f"dense matrix: {dense.parameters:,} weights, {dense.flops:,} floating-point operations")
    print(f"the convolution is {dense.flops / conv.flops:,.0f} times cheaper")
    if args.out:
        from ._atomic import atomic_write_bytes

        scaled = np.clip(np.abs(edges) / max(np.abs(edges).max(), 1e-12), 0, 1)
        extension = os.path.splitext(args.out)[1] or ".png"
        atomic_write_bytes(args.out, iio.imwrite("<bytes>", (255 * (1 - scaled)).astype(np.uint8),
                                                 extension=extension))
        print(f"wrote {args.out}")
    return 0


def _file_kind(args: argparse.Namespace) -> SignalKind:
    """The kind ``args.file`` is read as: --spectrogram's audio, --kind, or recognised."""
    from .io import detect

    if args.spectrogram:
        return "waveform"
    return args.kind or detect(args.file)


def _load_for_cli(args: argparse.Namespace, command: str,
                  kind: SignalKind | None = None) -> Signal:
    """``args.file`` as a Signal, the way ``info`` and ``show`` read it (``kind``: the
    file's, when the caller has detected it already)."""
    import numpy as np

    from .io import load, probe_video, spectrogram

    kind = kind or _file_kind(args)
    options: dict[str, Any] = {}
    if kind == "video":
        # frames as bytes (a quarter of float32's memory); `show` decodes only 8 of them
        options["dtype"] = np.uint8
        if args.stop is not None:
            options["stop"] = args.stop
        if command == "show":
            frames = probe_video(args.file).get("frames") or 8
            options["step"] = max(1, min(frames, args.stop or frames) // 8)
    signal = load(args.file, kind=kind, **options)
    if args.spectrogram:
        signal = spectrogram(signal, n_fft=args.n_fft, kind=args.spectrogram)
    return signal


def _video_lines(path: PathLike, stop: int | None) -> list[str]:
    """``sigconv info`` of a video from its stream header (:func:`sigconv.io.probe_video`):
    the fields a loaded video shows, without decoding its frames."""
    from .io import AXES, probe_video

    info = probe_video(path)
    frames, rate = info.get("frames"), info.get("frame_rate")
    shown = min(frames, stop) if frames and stop else (frames or stop)
    shape = f"(3, {shown if shown else '?'}, {info.get('height')}, {info.get('width')})"
    lines = ["kind:     video",
             f"shape:    {shape}  axes {AXES['video']}",
             "dtype:    float32 (as sigconv.io.load gives it; decoded as uint8)",
             "values:   not decoded (info reads the stream header; 'sigconv show' draws frames)"]
    if shown and rate:
        lines.append(f"duration: {shown / rate:.3f} s")
    fields = [("frame_rate", f"{rate:g}" if rate else None), ("start_time", "0"),
              ("path", str(path)), ("first_frame", "0"), ("frames_in_file", frames),
              ("codec", info.get("codec")), ("container", info.get("container")),
              ("pixel_format", info.get("pixel_format"))]
    lines += [f"{key + ':':<9} {value}" for key, value in fields if value is not None]
    return lines


def _cpu_lines() -> list[str]:
    """``sigconv info --cpu``: the CPU, the microkernel target in use, the BLAS."""
    from ._cpu import cpu_info
    info = cpu_info()
    blas = info["blas"]
    forced = f" (forced by SIGCONV_CPU={info['forced']})" if info["forced"] else ""
    return [f"cpu: {info['model']} ({info['machine']})",
            f"target: {info['target']}{forced}",
            f"targets this CPU runs: {', '.join(info['targets'])} "
            f"(compiled: {', '.join(info['compiled'])})",
            f"threads: {info['threads']}",
            f"blas: {blas.get('internal_api')} {blas.get('version')}, kernels for "
            f"{blas.get('architecture')}, {blas.get('num_threads')} threads"]


def _info(args: argparse.Namespace) -> int:
    from .io.show import describe

    if args.cpu:
        for line in _cpu_lines():
            print(line)
        if args.file is None:
            return 0
    elif args.file is None:
        raise _UsageError("give a data file, or --cpu for the machine")
    kind = _file_kind(args)
    if kind == "video":
        lines = _video_lines(args.file, args.stop)
    else:
        lines = describe(_load_for_cli(args, "info", kind))
    print(args.file)
    for line in lines:
        print("  " + line)
    return 0


def _show(args: argparse.Namespace) -> int:
    from .io.show import show

    signal = _load_for_cli(args, "show")
    try:
        show(signal, args.out)
    except (OSError, ValueError) as exc:
        raise _UsageError(f"cannot draw {args.file!r} to {args.out!r}: {exc}") from None
    print(f"wrote {args.out}")
    return 0


def _add_load_options(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    parser.add_argument("file", nargs="?" if optional else None,
                        help="waveform (WAV, FLAC, OGG, MP3, ...), BVH, image, "
                        "volume (NIfTI, DICOM file or series folder, .npy/.npz) or video")
    parser.add_argument("--kind", choices=("waveform", "skeleton", "image", "volume", "video"),
                        help="read as this kind instead of recognising the file")
    parser.add_argument("--spectrogram", choices=("power", "magnitude", "mel", "log-mel", "mfcc"),
                        help="load audio and turn it into this kind of spectrogram")
    parser.add_argument("--n-fft", type=_positive_int, default=512,
                        help="with --spectrogram: frame (FFT) length in samples")
    parser.add_argument("--stop", type=_positive_int,
                        help="video: read frames before this index only")


# -- prepare -------------------------------------------------------------------------
def _spectrogram_default(name: str) -> Any:
    """The default of one option of :func:`sigconv.io.spectrogram` (one place for it)."""
    import inspect

    from .io.spectrogram import spectrogram

    return inspect.signature(spectrogram).parameters[name].default


def _prepare_options(
        args: argparse.Namespace) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(spectrogram options, loader options)`` of ``sigconv prepare``'s arguments."""
    spectrogram: dict[str, Any] | None = None
    if args.kind == "spectrogram":
        spectrogram = {"kind": args.spectrogram, "n_fft": args.n_fft, "n_mels": args.n_mels}
        if args.hop_length is not None:
            spectrogram["hop_length"] = args.hop_length
    else:
        given = [flag for flag, value in (("--spectrogram", args.spectrogram),
                                          ("--n-fft", args.n_fft), ("--n-mels", args.n_mels),
                                          ("--hop-length", args.hop_length))
                 if value is not None]
        if given:
            raise _UsageError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for "
                              f"--kind spectrogram, not --kind {args.kind}")
    options = {"sample_rate": args.sample_rate, "mode": args.mode,
               "size": tuple(args.size) if args.size else None,
               "spacing": (args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing))
               if args.spacing else None}
    if args.spacing and len(args.spacing) not in (1, 3):
        raise _UsageError(f"--spacing takes one voxel size or three (depth, height, width), "
                          f"got {len(args.spacing)} values")
    return spectrogram, {k: v for k, v in options.items() if v is not None}


def _prepare(args: argparse.Namespace) -> int:
    from .data.sources import prepare_folder

    if args.kind == "spectrogram":  # the defaults of --kind spectrogram, said in the help
        args.spectrogram = args.spectrogram or "log-mel"
        args.n_fft = args.n_fft or _spectrogram_default("n_fft")
        args.n_mels = args.n_mels or _spectrogram_default("n_mels")
    spectrogram, options = _prepare_options(args)
    if options.get("mode") == "RGBA" and args.kind == "video":
        raise _UsageError("--mode RGBA is for images; video decodes as RGB or L")
    with _cluster(args.scheduler) as client:
        summary = prepare_folder(args.source, args.out, kind=args.kind, labels=args.labels,
                                 workers=args.workers, client=client, spectrogram=spectrogram,
                                 progress=_progress(args), **options)
    return 0 if summary.failed == 0 else 1


# -- train, evaluate, predict ---------------------------------------------------------
def _per_task(attribute: str, fmt: str = "{}") -> str:
    """``"60 to classify, 25 to denoise, 40 to label"``: a Task default of each task."""
    from .train.tasks import TASKS

    return ", ".join(f"{fmt.format(getattr(task, attribute))} to {name}"
                     for name, task in TASKS.items())


@contextlib.contextmanager
def _cluster(address: str | None) -> Iterator[Any]:
    """A client of the Dask scheduler at ``address`` (closed afterwards), or None without one;
    ClusterError naming the address when it cannot be reached."""
    if not address:
        yield None
        return
    from .train.distributed import connect

    client = connect(address)
    try:
        yield client
    finally:
        client.close()


def _train(args: argparse.Namespace) -> int:
    from .train import train

    with _cluster(args.scheduler) as client:
        metrics = train(args.store, args.out, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, seed=args.seed, resume=args.resume,
                        overwrite=args.overwrite, task=args.task, model=args.model,
                        noise=args.noise, patch=args.patch, augment=args.augment,
                        progress=_progress(args), log=sys.stderr, client=client)
    print(f"test: {_scores(metrics['test'])} ({os.path.join(args.out, 'metrics.json')})")
    return 0


def _scores(scores: dict[str, Any]) -> str:
    """The numbers of a scores dict on one line (lists and tables left out)."""
    shown = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    return ", ".join(f"{k} {v:.4f}" for k, v in shown.items()) or "no test items"


def _evaluate(args: argparse.Namespace) -> int:
    from .train import evaluate

    with _cluster(args.scheduler) as client:
        scores = evaluate(args.run_dir, args.store, split=args.split, client=client)
    print(f"{args.split}: {_scores(scores)}")
    return 0


#: ``--format`` of ``sigconv predict``: the file each array answer is written to.
SUFFIXES = {"npy": ".npy", "nifti": ".nii.gz"}


def _output_format(choice: str, signal: Signal) -> str:
    """``"npy"`` or ``"nifti"`` for one input; ``auto``: NIfTI for a volume read from a
    NIfTI or DICOM file (it carries a patient-space affine), .npy for everything else."""
    if choice == "nifti":
        if signal.kind != "volume":
            raise _UsageError(f"--format nifti is for volumes; {signal.path} is "
                              f"a{'n' if signal.kind[0] in 'aeiou' else ''} {signal.kind}")
        return "nifti"
    if choice == "npy":
        return "npy"
    if signal.kind != "volume" or signal.path is None:
        return "npy"
    read_as = _read_as(signal.path)
    return "nifti" if read_as is not None and read_as in PATIENT_SPACE else "npy"


#: The formats (:data:`sigconv.io.formats.FORMATS`) whose volumes carry a patient-space affine.
PATIENT_SPACE = ("NIfTI", "DICOM", "DICOM series")


def _read_as(path: PathLike) -> str | None:
    """The name of the format :func:`sigconv.io.load` reads ``path`` as, or None."""
    from .io._common import check_file, read_head
    from .io.formats import recognise

    path = check_file(path, directory_ok=True)
    found = recognise(path, read_head(path))
    return None if found is None else found.name


def _predict(args: argparse.Namespace) -> int:
    from .train.loop import _read_state

    state = _read_state(args.run_dir)  # a run folder, or refused before anything is read
    gives_arrays = state["task"] != "classify"
    if gives_arrays and args.out_dir is None:
        raise _UsageError(f"this run ({state['task']}) gives an array per file; pass --out-dir "
                          "FOLDER to write them")
    if not gives_arrays and (args.out_dir is not None or args.format != "auto"):
        raise _UsageError("this run classifies: it prints a class and a probability per file; "
                          "--out-dir and --format are for denoise and label runs")
    if args.out_dir is not None and os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise _UsageError(f"--out-dir {args.out_dir!r} is a file, not a folder")
    with _cluster(args.scheduler) as client:  # unreachable: refused before the files are read
        return _write_predictions(args, gives_arrays, client)


def _write_predictions(args: argparse.Namespace, gives_arrays: bool, client: Any) -> int:
    """Load and check every file, then print (classify) or write each answer in order."""
    from .train.inference import _predictions, load_inputs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signals = load_inputs(args.run_dir, args.files)  # every file, before any inference
    _warned("predict", caught)
    formats: list[str] = []
    names: list[str] = []
    if gives_arrays:
        formats = [_output_format(args.format, s) for s in signals]
        names = _prediction_names(args.files, [SUFFIXES[f] for f in formats])
    results = _predictions(args.run_dir, signals, batch_size=args.batch_size,
                           progress=_progress(args), log=sys.stderr, client=client)
    for index, result in enumerate(results):
        if not gives_arrays:  # a classifier: class and probability
            print(f"{result[0]}\t{result[1]}\t{result[2]:.3f}", flush=True)
            continue
        target = _save_prediction(args.out_dir, names[index], result[1], signals[index],
                                  formats[index])
        print(f"{result[0]}\t{target}", flush=True)
    return 0


def _prediction_names(paths: Sequence[PathLike],
                      suffixes: str | Sequence[str] = ".npy") -> list[str]:
    """Output names for the inputs ``paths``: each input's path relative to the deepest
    folder holding all of them, plus its suffix (one for all, or one per input).

    Inputs in one folder keep their file names (``scan.nii`` -> ``scan.nii.npy``); inputs
    from several folders keep the part of their path that tells them apart
    (``a/scan.nii`` and ``b/scan.nii`` -> ``a/scan.nii.npy`` and ``b/scan.nii.npy``), so
    different inputs never share an output and the name depends only on the paths given.
    """
    absolute = [os.path.abspath(os.fspath(p)) for p in paths]  # also drops a trailing "/"
    if isinstance(suffixes, str):
        suffixes = [suffixes] * len(absolute)
    try:
        common = os.path.commonpath([os.path.dirname(p) for p in absolute]) if absolute else ""
    except ValueError:  # Windows: inputs on several drives; keep the drive as a folder
        return [os.path.join(*(d.strip(":\\/") for d in os.path.splitdrive(p) if d)) + s
                for p, s in zip(absolute, suffixes)]
    return [os.path.relpath(p, common) + s for p, s in zip(absolute, suffixes)]


def _nifti_bytes(array: Any, affine: Any) -> bytes:
    """A gzipped NIfTI-1 file of a volume ``(C, D, H, W)`` or label map ``(D, H, W)`` whose
    index (depth, height, width) maps to RAS+ mm by ``affine``; channels as the 4th axis."""
    import gzip

    import nibabel as nib
    import numpy as np

    array = np.asarray(array)
    if array.ndim == 4:
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    if array.dtype.kind in "iub":  # labels: the smallest type NIfTI readers all take
        array = array.astype(np.uint8 if 0 <= array.min() and array.max() < 256 else np.int32)
    image = nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64))
    image.header.set_xyzt_units("mm")
    return gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)


def _save_prediction(folder: str, name: str, array: Any, signal: Signal, fmt: str) -> str:
    """Write ``array`` as ``folder/name`` atomically (creating sub-folders); return that path.

    ``fmt`` "nifti" writes a gzipped NIfTI with the input ``signal``'s affine.
    """
    from ._atomic import atomic_save_npy, atomic_write_bytes

    target = os.path.join(folder, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if fmt == "nifti":
        atomic_write_bytes(target, _nifti_bytes(array, signal.affine))
    else:
        atomic_save_npy(target, array)
    return target


# -- demo ------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    from .demos import demo

    print(f"sigconv demo: the same training code on 1-D signals, 2-D images and a 3-D volume "
          f"(folder {args.out})", flush=True)
    results = demo(args.out, epochs=args.epochs, progress=_progress(args), log=sys.stdout)
    print("results: " + "; ".join(
        f"{name} " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
        for name, scores in results.items()))
    return 0


# -- the parser ---------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from ._version import __version__
    from .train.tasks import MODELS, TASKS

    parser = argparse.ArgumentParser(prog="sigconv", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"sigconv {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, formatter_class=_HelpFormatter,
                                   description=textwrap.fill(summary[0].upper() + summary[1:]
                                                             + "."))

    info = command("info", "kind, shape, dtype and metadata of a data file (a video from its "
                           "header, without decoding); --cpu: the CPU and kernel target")
    _add_load_options(info, optional=True)
    info.add_argument("--cpu", action="store_true",
                      help="print the CPU, the microkernel target in use (SIGCONV_CPU forces "
                      "one), the threads and the BLAS")
    _add_compute_options(info, quiet=False)
    info.set_defaults(run=_info)

    show = command("show", "draw a data file (waveform, spectrogram, skeleton, image, CT "
                           "slices, video frames) to an image")
    _add_load_options(show)
    show.add_argument("-o", "--out", required=True, help="image file to write (PNG, PDF, SVG)")
    show.set_defaults(run=_show)

    prepare = command("prepare", "prepare a folder of files (a class per sub-folder, or a "
                                 "labels file) into a resumable store")
    prepare.add_argument("source", help="folder of source files")
    prepare.add_argument("out", help="store folder to write (a rerun resumes it, and prepares "
                                     "again what changed: files or options)")
    prepare.add_argument("--kind", required=True, choices=("waveform", "spectrogram", "skeleton",
                                                           "image", "volume", "video"),
                         help="what the files are (spectrogram: audio turned into spectrograms)")
    prepare.add_argument("--labels", help="CSV with columns path,label[,split]; without it each "
                                          "sub-folder is a class")
    prepare.add_argument("--workers", type=_positive_int, default=1,
                         help="local worker processes")
    prepare.add_argument("--scheduler", help="address of a Dask scheduler to run on instead")
    audio = prepare.add_argument_group("audio (--kind waveform or spectrogram)")
    audio.add_argument("--sample-rate", type=_positive_float, default=None, metavar="HZ",
                       help="resample to this rate (default: each file's own rate)")
    audio.add_argument("--spectrogram", default=None,
                       choices=("power", "magnitude", "mel", "log-mel", "mfcc"),
                       help="which spectrogram (default: log-mel)")
    audio.add_argument("--n-fft", type=_positive_int, default=None,
                       help=f"frame (FFT) length in samples (default: "
                            f"{_spectrogram_default('n_fft')})")
    audio.add_argument("--hop-length", type=_positive_int, default=None,
                       help="samples between columns (default: n_fft / 4)")
    audio.add_argument("--n-mels", type=_positive_int, default=None,
                       help=f"mel bands of mel, log-mel and mfcc (default: "
                            f"{_spectrogram_default('n_mels')})")
    pictures = prepare.add_argument_group("images and video")
    pictures.add_argument("--mode", choices=("L", "RGB", "RGBA"), default=None,
                          help="channels: L one grey channel, RGB three, RGBA four (images "
                               "only); a folder of grey and colour files needs one (default: "
                               "as stored for images, RGB for video)")
    pictures.add_argument("--size", type=_positive_int, nargs=2, default=None,
                          metavar=("H", "W"),
                          help="resize to H x W pixels (default: keep each file's size; "
                               "batches of different sizes train as Ragged batches)")
    volumes = prepare.add_argument_group("volumes")
    volumes.add_argument("--spacing", type=_positive_float, nargs="+", default=None,
                         metavar="MM",
                         help="resample to this voxel size in mm: one value, or three (depth, "
                              "height, width) (default: keep each file's spacing)")
    _add_compute_options(prepare)
    prepare.set_defaults(run=_prepare)

    train = command("train", "train a model on a prepared store: classify items, denoise "
                             "them, or label every sample")
    train.add_argument("store", help="a store made by `sigconv prepare` or datasets/*.py")
    train.add_argument("--out", required=True, help="run folder (checkpoints, metrics, plots)")
    train.add_argument("--task", choices=tuple(TASKS), default=None,
                       help="what to learn (default: classify when the items have labels, "
                            "label when they carry a label channel; denoise must be asked for)")
    train.add_argument("--model", choices=MODELS, default=None,
                       help="the network (default: the task's own: " + ", ".join(
                           f"{task.models[0]} to {name}" for name, task in TASKS.items()) + ")")
    train.add_argument("--epochs", type=_positive_int, default=None,
                       help=f"passes over the training items (default: the task's: "
                            f"{_per_task('epochs')})")
    train.add_argument("--batch-size", type=_positive_int, default=None,
                       help=f"items per step, crops for denoise and label (default: the "
                            f"task's: {_per_task('batch_size')})")
    train.add_argument("--lr", type=_positive_float, default=None,
                       help=f"Adam's learning rate, with a cosine schedule (default: the "
                            f"task's: {_per_task('lr', '{:g}')})")
    train.add_argument("--seed", type=_nonnegative_int, default=0,
                       help="seeds the weights, the batch order, noise, dropout and "
                            "augmentation: the same seed gives the same run")
    train.add_argument("--noise", type=_nonnegative_float, default=None, metavar="SIGMA",
                       help="denoise/label: std of the added Gaussian noise in the store's "
                            "units (default: 5%% of the data range to denoise, none to label)")
    train.add_argument("--patch", type=_positive_int, nargs="+", default=None, metavar="P",
                       help="denoise/label: training crop size, one or one per axis "
                            "(default: 32)")
    train.add_argument("--augment", default="default",
                       choices=("none", "light", "default", "strong"),
                       help="augmentation of the training items for the task and data kind "
                            "(sigconv.transforms.preset; default: %(default)s); recorded in "
                            "the run folder, never applied to evaluation")
    train.add_argument("--scheduler", metavar="ADDRESS",
                       help="train on the workers of this Dask scheduler (synchronous data "
                            "parallelism; the store must be readable at its path by every "
                            "worker)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out (its checkpoints, state, metrics and "
                            "plots); without --resume or --overwrite a folder that already "
                            "holds a run is refused")
    _add_compute_options(train)
    train.set_defaults(run=_train)

    evaluate = command("evaluate", "scores of a run's best model on a split of a store "
                                   "(accuracy, PSNR or Dice)")
    evaluate.add_argument("run_dir", metavar="RUN", help="a run folder made by `sigconv train` "
                          "(its best model) or a checkpoint file in one")
    evaluate.add_argument("store", help="a prepared store")
    evaluate.add_argument("--split", default="test", help="which items of the store")
    evaluate.add_argument("--scheduler", metavar="ADDRESS",
                          help="compute the scores on the workers of this Dask scheduler "
                               "(the store must be readable at its path by every worker)")
    _add_compute_options(evaluate, quiet=False)
    evaluate.set_defaults(run=_evaluate)

    predict = command("predict", "answer for files with a run's best model: a class each, or "
                                 "a denoised or labelled array each")
    predict.add_argument("run_dir", metavar="RUN", help="a run folder made by `sigconv train` "
                         "(its best model) or a checkpoint file in one")
    predict.add_argument("files", nargs="+", help="files of the kind the run was trained on "
                         "(all are read and checked before the first answer)")
    predict.add_argument("--out-dir", default=None,
                         help="denoise/label runs: write each output here as <name><suffix>, "
                              "where <name> is the input's path relative to the deepest "
                              "folder holding all the inputs (its file name when they share "
                              "one folder; a/scan.nii and b/scan.nii give a/scan.nii.nii.gz and "
                              "b/scan.nii.nii.gz)")
    predict.add_argument("--format", choices=("auto", "npy", "nifti"), default="auto",
                         help="denoise/label runs: the output files; auto: NIfTI (.nii.gz, "
                              "with the input's affine) for volumes read from NIfTI or DICOM, "
                              ".npy for everything else")
    predict.add_argument("--batch-size", type=_positive_int, default=32,
                         help="classify runs: files per batch")
    predict.add_argument("--scheduler", metavar="ADDRESS",
                         help="infer on the workers of this Dask scheduler (a task per batch "
                              "of files, or per file for denoise and label runs); the files "
                              "are read and checked here, the outputs written here")
    _add_compute_options(predict)
    predict.set_defaults(run=_predict)

    demo = command("demo", "train the same model on 1-D, 2-D and 3-D data generated offline "
                           "(about a minute)")
    demo.add_argument("--out", default="sigconv-demo", help="folder for stores, runs and plots")
    demo.add_argument("--epochs", type=_positive_int, default=10, help="epochs of each run")
    _add_compute_options(demo)
    demo.set_defaults(run=_demo)

    edges = command("edges", "figure 9.6: vertical edges of a photograph")
    edges.add_argument("image", help="a photograph (PNG, JPEG, ...), at least 280 x 320 pixels")
    edges.add_argument("--out", help="write the edge map to this image file")
    _add_compute_options(edges, quiet=False)
    edges.set_defaults(run=_edges)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sigconv`` with ``argv`` (default: the command line); return the exit code."""
    from .errors import SigconvError

    parser = _parser()
    args = parser.parse_args(argv)  # bad usage: argparse prints it and exits 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    prefix = f"sigconv {args.command}:"
    try:
        with _threads(getattr(args, "threads", None)):
            return args.run(args)
    except _UsageError as exc:
        print(f"{prefix} {exc}", file=sys.stderr)
        return 2
    except SigconvError as exc:  # bad input (a missing or unreadable file, a bad option), or
        # training that cannot go on (a run folder in use, a loss that became NaN)
        print(f"{prefix} {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine: a full disk, a folder we may not write
        print(f"{prefix} {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prefix} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
