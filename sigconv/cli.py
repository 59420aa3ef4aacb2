"""The ``sigconv`` command line."""
import argparse
import os
import sys

__all__ = ["main"]


def _edges(args):
    import imageio.v3 as iio
    import numpy as np

    from .demos import edge_detection
    from .errors import SigconvError

    try:
        image = iio.imread(args.image)
    except (OSError, ValueError) as exc:
        print(f"sigconv edges: cannot read image {args.image!r}: {exc}", file=sys.stderr)
        return 2
    try:
        edges, costs = edge_detection(image)
    except SigconvError as exc:
        print(f"sigconv edges: {exc}", file=sys.stderr)
        return 2
    conv, dense = costs["conv"], costs["dense"]
    print(f"edge map: {edges.shape[0]} x {edges.shape[1]} (rows x columns)")
    print(f"convolution: {conv.parameters} weights, {conv.flops:,} floating-point operations")
    print(f"dense matrix: {dense.parameters:,} weights, {dense.flops:,} floating-point operations")
    print(f"the convolution is {dense.flops / conv.flops:,.0f} times cheaper")
    if args.out:
        scaled = np.clip(np.abs(edges) / max(np.abs(edges).max(), 1e-12), 0, 1)
        iio.imwrite(args.out, (255 * (1 - scaled)).astype(np.uint8))
        print(f"wrote {args.out}")
    return 0


def _load_for_cli(args, command):
    import numpy as np

    from .errors import SigconvError
    from .io import LoadError, detect, load, probe_video, spectrogram

    try:
        kind = "waveform" if args.spectrogram else args.kind
        if kind is None:
            kind = detect(args.file)
        options = {}
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
    except (LoadError, SigconvError) as exc:
        print(f"sigconv {command}: {exc}", file=sys.stderr)
        return None


def _cpu_lines():
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


def _info(args):
    from .io.show import describe

    if args.cpu:
        for line in _cpu_lines():
            print(line)
        if args.file is None:
            return 0
    elif args.file is None:
        print("sigconv info: give a data file, or --cpu for the machine", file=sys.stderr)
        return 2
    signal = _load_for_cli(args, "info")
    if signal is None:
        return 2
    print(args.file)
    for line in describe(signal):
        print("  " + line)
    return 0


def _show(args):
    from .io.show import show
    from .errors import SigconvError

    signal = _load_for_cli(args, "show")
    if signal is None:
        return 2
    try:
        show(signal, args.out)
    except (SigconvError, OSError, ValueError) as exc:
        print(f"sigconv show: cannot draw {args.file!r}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


def _add_load_options(parser, optional=False):
    parser.add_argument("file", nargs="?" if optional else None,
                        help="waveform (WAV, FLAC, OGG, MP3, ...), BVH, image, "
                        "volume (NIfTI, DICOM file or series folder, .npy/.npz) or video")
    parser.add_argument("--kind", choices=("waveform", "skeleton", "image", "volume", "video"),
                        help="read as this kind instead of recognising the file")
    parser.add_argument("--spectrogram", choices=("power", "magnitude", "mel", "log-mel", "mfcc"),
                        help="load audio and turn it into this kind of spectrogram")
    parser.add_argument("--n-fft", type=int, default=512, help="spectrogram frame length")
    parser.add_argument("--stop", type=int, help="video: read frames before this index only")


def _prepare(args):
    from .data.sources import prepare_folder
    from .errors import SigconvError

    client = None
    try:
        if args.scheduler:
            try:
                from distributed import Client
            except ImportError:
                print("sigconv prepare: --scheduler needs dask.distributed "
                      "(pip install 'sigconv[dask]')", file=sys.stderr)
                return 2
            client = Client(args.scheduler)
        spectrogram = {"kind": args.spectrogram, "n_fft": args.n_fft} if args.kind == "spectrogram" else None
        summary = prepare_folder(args.source, args.out, kind=args.kind, labels=args.labels,
                                 workers=args.workers, client=client, spectrogram=spectrogram)
    except SigconvError as exc:
        print(f"sigconv prepare: {exc}", file=sys.stderr)
        return 2
    finally:
        if client is not None:
            client.close()
    return 0 if summary.failed == 0 else 1


def _train(args):
    from .errors import SigconvError
    from .train import train

    try:
        metrics = train(args.store, args.out, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, seed=args.seed, resume=args.resume,
                        overwrite=args.overwrite, task=args.task,
                        model=args.model, noise=args.noise, patch=args.patch,
                        augment=args.augment)
    except SigconvError as exc:
        print(f"sigconv train: {exc}", file=sys.stderr)
        return 2
    print(f"test: {_scores(metrics['test'])} ({args.out}/metrics.json)")
    return 0


def _scores(scores):
    """The numbers of a scores dict on one line (lists and tables left out)."""
    shown = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    return ", ".join(f"{k} {v:.4f}" for k, v in shown.items()) or "no test items"


def _evaluate(args):
    from .errors import SigconvError
    from .train import evaluate

    try:
        scores = evaluate(args.run_dir, args.store, split=args.split)
    except (SigconvError, OSError) as exc:
        print(f"sigconv evaluate: {exc}", file=sys.stderr)
        return 2
    print(f"{args.split}: {_scores(scores)}")
    return 0


def _predict(args):
    from .errors import SigconvError
    from .train import predict

    try:
        results = predict(args.run_dir, args.files)
        names = _prediction_names(args.files)
        for result, name in zip(results, names):
            if len(result) == 3:  # a classifier: class and probability
                print(f"{result[0]}\t{result[1]}\t{result[2]:.3f}")
                continue
            if args.out_dir is None:
                print("sigconv predict: this run gives an array per file; pass --out-dir",
                      file=sys.stderr)
                return 2
            print(f"{result[0]}\t{_save_prediction(args.out_dir, name, result[1])}")
    except (SigconvError, OSError) as exc:
        print(f"sigconv predict: {exc}", file=sys.stderr)
        return 2
    return 0


def _prediction_names(paths):
    """Output names for the inputs ``paths``: each input's path relative to the deepest
    folder holding all of them, plus ``.npy``.

    Inputs in one folder keep their file names (``scan.nii`` -> ``scan.nii.npy``); inputs
    from several folders keep the part of their path that tells them apart
    (``a/scan.nii`` and ``b/scan.nii`` -> ``a/scan.nii.npy`` and ``b/scan.nii.npy``), so
    different inputs never share an output and the name depends only on the paths given.
    """
    absolute = [os.path.abspath(os.fspath(p)) for p in paths]  # also drops a trailing "/"
    try:
        common = os.path.commonpath([os.path.dirname(p) for p in absolute]) if absolute else ""
    except ValueError:  # Windows: inputs on several drives; keep the drive as a folder
        return [os.path.join(*(d.strip(":\\/") for d in os.path.splitdrive(p) if d)) + ".npy"
                for p in absolute]
    return [os.path.relpath(p, common) + ".npy" for p in absolute]


def _save_prediction(folder, name, array):
    """Write ``array`` as ``folder/name`` atomically (creating sub-folders); return that path."""
    from ._atomic import atomic_save_npy

    target = os.path.join(folder, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    atomic_save_npy(target, array)
    return target


def _demo(args):
    from .demos import demo

    print(f"sigconv demo: the same training code on 1-D signals, 2-D images and a 3-D volume "
          f"(folder {args.out})")
    results = demo(args.out, epochs=args.epochs, progress=not args.quiet, log=sys.stdout)
    print("results: " + "; ".join(
        f"{name} " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
        for name, scores in results.items()))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sigconv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train the same model on 1-D, 2-D and 3-D data "
                               "generated offline (about a minute)")
    demo.add_argument("--out", default="sigconv-demo", help="folder for stores, runs and plots")
    demo.add_argument("--epochs", type=int, default=10)
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo)
    edges = commands.add_parser("edges", help="figure 9.6: vertical edges of a photograph")
    edges.add_argument("image", help="a photograph (PNG, JPEG, ...), at least 280 x 320 pixels")
    edges.add_argument("--out", help="write the edge map to this image file")
    edges.set_defaults(run=_edges)
    info = commands.add_parser("info", help="kind, shape, dtype and metadata of a data file; "
                               "--cpu: the CPU and the kernel target sigconv uses")
    _add_load_options(info, optional=True)
    info.add_argument("--cpu", action="store_true",
                      help="print the CPU, the microkernel target in use (SIGCONV_CPU forces "
                      "one) and the BLAS")
    info.set_defaults(run=_info)
    show = commands.add_parser("show", help="draw a data file (waveform, spectrogram, "
                               "skeleton, image, CT slices, video frames) to an image")
    _add_load_options(show)
    show.add_argument("-o", "--out", required=True, help="image file to write (PNG, PDF, SVG)")
    show.set_defaults(run=_show)
    prepare = commands.add_parser(
        "prepare", help="prepare a folder of files (a class per sub-folder, or a labels file) "
                        "into a resumable store")
    prepare.add_argument("source", help="folder of source files")
    prepare.add_argument("out", help="store folder to write (resumes if it exists)")
    prepare.add_argument("--kind", required=True, choices=("waveform", "spectrogram", "skeleton",
                                                           "image", "volume", "video"))
    prepare.add_argument("--labels", help="CSV with columns path,label[,split]")
    prepare.add_argument("--workers", type=int, default=1, help="local worker processes")
    prepare.add_argument("--scheduler", help="address of a Dask scheduler to run on instead")
    prepare.add_argument("--spectrogram", default="log-mel",
                         choices=("power", "magnitude", "mel", "log-mel", "mfcc"),
                         help="with --kind spectrogram: which spectrogram")
    prepare.add_argument("--n-fft", type=int, default=512, help="with --kind spectrogram")
    prepare.set_defaults(run=_prepare)
    train = commands.add_parser("train", help="train a classifier on a prepared store")
    train.add_argument("store", help="a store made by `sigconv prepare` or datasets/*.py")
    train.add_argument("--out", required=True, help="run folder (checkpoints, metrics)")
    train.add_argument("--epochs", type=int, default=None,
                       help="passes over the training items (default: 60 to classify, 25 to "
                            "denoise, 40 to label)")
    train.add_argument("--batch-size", type=int, default=None,
                       help="items (crops for denoise/label) per step (default: 32 to "
                            "classify, 2 to denoise and label)")
    train.add_argument("--lr", type=float, default=None,
                       help="Adam's learning rate, cosine schedule (default: 2e-3; 5e-3 to "
                            "label)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out (its checkpoints, state, metrics and "
                            "plots); without --resume or --overwrite a folder that already "
                            "holds a run is refused")
    train.add_argument("--task", choices=["classify", "denoise", "label"], default=None,
                       help="default: classify when items have labels, label when they "
                            "carry a label channel")
    train.add_argument("--model", default=None,
                       help="classifier, encoder-decoder, residual-encoder-decoder or "
                            "labeller (default: the task's own)")
    train.add_argument("--noise", type=float, default=None,
                       help="denoise/label: std of the added Gaussian noise in the store's "
                            "units (denoise default: 5%% of the data range)")
    train.add_argument("--patch", type=int, nargs="+", default=None,
                       help="denoise/label: training crop size per axis (default 32)")
    train.add_argument("--augment", default="default",
                       choices=("none", "light", "default", "strong"),
                       help="augmentation of the training items for the task and data kind "
                            "(sigconv.transforms.preset; default: %(default)s); recorded in "
                            "the run folder, never applied to evaluation")
    train.set_defaults(run=_train)
    evaluate = commands.add_parser("evaluate", help="accuracy of a run's best model on a split")
    evaluate.add_argument("run_dir", metavar="RUN", help="a run folder made by `sigconv train` "
                          "(its best model) or a checkpoint file in one")
    evaluate.add_argument("store")
    evaluate.add_argument("--split", default="test")
    evaluate.set_defaults(run=_evaluate)
    predict = commands.add_parser("predict", help="classify files with a run's best model")
    predict.add_argument("run_dir", metavar="RUN", help="a run folder made by `sigconv train` "
                         "(its best model) or a checkpoint file in one")
    predict.add_argument("files", nargs="+", help="files of the kind the run was trained on")
    predict.add_argument("--out-dir", default=None,
                         help="denoise/label runs: write each output here as <name>.npy, "
                              "where <name> is the input's path relative to the deepest "
                              "folder holding all the inputs (its file name when they share "
                              "one folder; a/scan.nii and b/scan.nii give a/scan.nii.npy and "
                              "b/scan.nii.npy)")
    predict.set_defaults(run=_predict)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
