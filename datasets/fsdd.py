"""Prepare the Free Spoken Digit Dataset into a sigconv store.

    python datasets/fsdd.py --source ../shared/data/fsdd --out prepared/fsdd
    python datasets/fsdd.py --source ../shared/data/fsdd --out prepared/fsdd-mel --input log-mel

FSDD (CC BY-SA 4.0) holds 3,000 recordings ``{digit}_{speaker}_{take}.wav``,
mono 8 kHz, 6 speakers, 50 takes per digit and speaker.  Each item records
``label`` (the digit), ``speaker``, ``take`` and its split: the official test
split is takes 0-4 (``"test"``).  By default (``--validation random``) takes
5-49 are ``"train"`` and ``sigconv train`` holds out a stable random tenth of
them for validation; ``--validation takes`` marks takes 5-9 of every speaker
and digit ``"validation"``, held out the way the test takes are, and takes
10-49 ``"train"`` (measured in docs/train.md).  ``--input waveform`` stores the
``(1, T)`` waveform; ``--input log-mel`` a ``(1, 40, T')`` log-mel
spectrogram (n_fft 256, hop 64: 8 ms columns).  The source is a local clone of
the dataset (its ``recordings/`` folder, or a folder of the WAV files); without
``--source`` the script downloads the dataset's archive once, next to the
store.  Interrupt it at any time and run it again: it
resumes (see :func:`sigconv.data.prepare`).  ``--workers N`` prepares with N
local processes; ``--scheduler ADDRESS`` on a Dask cluster whose workers see
the same file system.
"""
import argparse
import functools
import os
import re
import shutil
import sys
import tempfile
import urllib.request
import zipfile

from sigconv.data import Source, prepare
from sigconv.data.sources import load_item
from sigconv.data.store import MANIFEST, read_records
from sigconv.errors import SigconvError

NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")

#: The dataset's repository as a zip archive (CC BY-SA 4.0).
ARCHIVE = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
LOG_MEL = {"kind": "log-mel", "n_fft": 256, "hop_length": 64, "n_mels": 40}

#: The official test takes of every speaker and digit.
TEST_TAKES = range(0, 5)

#: The validation takes of every speaker and digit under ``--validation takes``: the five
#: after the test's, so that validation is built like the test (every speaker and digit,
#: whole takes).  A random tenth of takes 5-49 (the default) scored 98.5-99.6% in session 5
#: for every variant; takes 5-9 score 97.3-98.0% on raw waveforms and 98.0-99.7% on log-mel
#: (docs/train.md).
VALIDATION_TAKES = range(5, 10)

#: Choices of ``--validation`` (the first is the default).
VALIDATION_CHOICES = ("random", "takes")


def split_of(take, validation="random"):
    """The split of a recording's ``take``: ``"test"`` for :data:`TEST_TAKES`,
    ``"validation"`` for :data:`VALIDATION_TAKES` when ``validation`` is ``"takes"``,
    else ``"train"``.

    Parameters
    ----------
    take : int
    validation : {"random", "takes"}
        ``"random"`` marks no validation takes (the trainer then holds out a
        stable random tenth of the training items).

    Returns
    -------
    str
    """
    if validation not in VALIDATION_CHOICES:
        raise ValueError(f"validation must be one of {VALIDATION_CHOICES}, got {validation!r}")
    if take in TEST_TAKES:
        return "test"
    if validation == "takes" and take in VALIDATION_TAKES:
        return "validation"
    return "train"


def fsdd_sources(source, validation="random"):
    """One :class:`Source` per recording, with label, speaker, take and split
    (:func:`split_of` with ``validation``)."""
    folder = os.path.join(source, "recordings")
    folder = folder if os.path.isdir(folder) else source
    if not os.path.isdir(folder):
        raise SystemExit(f"fsdd: no folder {source!r}; pass --source with a clone of the "
                         "Free Spoken Digit Dataset (its recordings/ folder holds the WAVs)")
    sources = []
    for name in sorted(os.listdir(folder)):
        match = NAME.match(name)
        if match:
            digit, speaker, take = match.groups()
            sources.append(Source(name[:-4], os.path.join(folder, name), {
                "label": int(digit), "speaker": speaker, "take": int(take),
                "split": split_of(int(take), validation)}))
    if not sources:
        raise SystemExit(f"fsdd: no recordings named digit_speaker_take.wav in {folder!r}")
    return sources


def other_splits(out, sources):
    """Ids of the items already in the store ``out`` whose split differs from their
    source's (a store keeps the records it was prepared with)."""
    wanted = {s.id: s.fields["split"] for s in sources}
    return [r["id"] for r in read_records(os.path.join(out, MANIFEST))
            if r.get("source_id") in wanted and r.get("split") != wanted[r["source_id"]]]


def download(url, destination):
    """Fetch the dataset's archive and unpack its recordings into ``destination``.

    Returns the folder holding the WAV files.  The archive goes to a
    temporary file and the recordings to a temporary folder that is renamed
    into place only when complete, so an interrupted download leaves nothing
    half-written; a second call finds the folder and does not download again.
    """
    target = os.path.join(destination, "recordings")
    if os.path.isdir(target):
        return target
    os.makedirs(destination, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination, prefix=".tmp-download-") as work:
        archive = os.path.join(work, "fsdd.zip")
        print(f"fsdd: downloading {url}", file=sys.stderr)
        try:
            urllib.request.urlretrieve(url, archive)
        except OSError as exc:
            raise SystemExit(f"fsdd: cannot download {url}: {exc}; clone the dataset and pass "
                             "--source") from None
        unpacked = os.path.join(work, "recordings")
        os.makedirs(unpacked)
        try:
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.namelist():
                    name = os.path.basename(member)
                    if NAME.match(name) and "/recordings/" in "/" + member:
                        with zipped.open(member) as src, \
                                open(os.path.join(unpacked, name), "wb") as dst:
                            shutil.copyfileobj(src, dst)
        except zipfile.BadZipFile as exc:
            raise SystemExit(f"fsdd: {url} is not a zip archive: {exc}") from None
        if not os.listdir(unpacked):
            raise SystemExit(f"fsdd: no recordings/*.wav in the archive from {url}")
        os.replace(unpacked, target)
    return target


def converter(input_kind):
    """The picklable converter for ``--input``."""
    if input_kind == "log-mel":
        return functools.partial(load_item, kind="waveform", spectrogram=LOG_MEL)
    return functools.partial(load_item, kind="waveform")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="FSDD clone or its recordings/ folder; without it the "
                        "dataset is downloaded (once) into OUT/../fsdd-source")
    parser.add_argument("--url", default=ARCHIVE, help="archive to download without --source")
    parser.add_argument("--out", required=True, help="store folder to write")
    parser.add_argument("--input", choices=("waveform", "log-mel"), default="waveform")
    parser.add_argument("--validation", choices=VALIDATION_CHOICES, default="random",
                        help="random (default): no validation split, sigconv train holds out "
                        "a stable random tenth of takes 5-49; takes: takes 5-9 of every "
                        "speaker and digit are the validation split.  A store keeps the "
                        "splits it was prepared with: prepare into a new folder to change "
                        "them")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scheduler", default=None,
                        help="address of a Dask scheduler: run one task per clip on its cluster")
    parser.add_argument("--limit", type=int, default=None, help="only the first N recordings")
    args = parser.parse_args(argv)
    source = args.source
    if source is None:
        source = download(args.url, os.path.join(os.path.dirname(os.path.abspath(args.out)),
                                                 "fsdd-source"))
    sources = fsdd_sources(source, args.validation)[:args.limit]
    stale = other_splits(args.out, sources)
    if stale:
        print(f"fsdd: {args.out!r} holds {len(stale)} items prepared with other splits (e.g. "
              f"{stale[0]!r}; --validation {args.validation} asks for others): prepare into a "
              "new folder", file=sys.stderr)
        return 2
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        summary = prepare(sources, args.out, converter(args.input), workers=args.workers,
                          client=client)
    except SigconvError as exc:  # the store is in use by another run, or its manifest is bad
        print(f"fsdd: {exc}", file=sys.stderr)
        return 2
    finally:
        if client is not None:
            client.close()
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
