"""Prepare the Free Spoken Digit Dataset into a sigconv store.

    python datasets/fsdd.py --source ../shared/data/fsdd --out prepared/fsdd
    python datasets/fsdd.py --source ../shared/data/fsdd --out prepared/fsdd-mel --input log-mel

FSDD (CC BY-SA 4.0) holds 3,000 recordings ``{digit}_{speaker}_{take}.wav``,
mono 8 kHz, 6 speakers, 50 takes per digit and speaker.  Each item records
``label`` (the digit), ``speaker``, ``take`` and the official split: takes 0-4
are ``"test"``, takes 5-49 ``"train"``.  ``--input waveform`` stores the
``(1, T)`` waveform; ``--input log-mel`` a ``(1, 40, T')`` log-mel
spectrogram (n_fft 256, hop 64: 8 ms columns).  The source is a local clone of
the dataset (its ``recordings/`` folder, or a folder of the WAV files); this
script does not download.  Interrupt it at any time and run it again: it
resumes (see :func:`sigconv.data.prepare`).  ``--workers N`` prepares with N
local processes; ``--scheduler ADDRESS`` on a Dask cluster whose workers see
the same file system.
"""
import argparse
import functools
import os
import re
import sys

from sigconv.data import Source, prepare
from sigconv.data.sources import load_item

NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
LOG_MEL = {"kind": "log-mel", "n_fft": 256, "hop_length": 64, "n_mels": 40}


def fsdd_sources(source):
    """One :class:`Source` per recording, with label, speaker, take and official split."""
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
                "split": "test" if int(take) < 5 else "train"}))
    if not sources:
        raise SystemExit(f"fsdd: no recordings named digit_speaker_take.wav in {folder!r}")
    return sources


def converter(input_kind):
    """The picklable converter for ``--input``."""
    if input_kind == "log-mel":
        return functools.partial(load_item, kind="waveform", spectrogram=LOG_MEL)
    return functools.partial(load_item, kind="waveform")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="FSDD clone or its recordings/ folder")
    parser.add_argument("--out", required=True, help="store folder to write")
    parser.add_argument("--input", choices=("waveform", "log-mel"), default="waveform")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--scheduler", default=None,
                        help="address of a Dask scheduler: run one task per clip on its cluster")
    parser.add_argument("--limit", type=int, default=None, help="only the first N recordings")
    args = parser.parse_args(argv)
    sources = fsdd_sources(args.source)[:args.limit]
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        summary = prepare(sources, args.out, converter(args.input), workers=args.workers,
                          client=client)
    finally:
        if client is not None:
            client.close()
    return 0 if summary.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
