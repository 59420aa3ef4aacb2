"""The damaged-file corpus: every data type, many kinds of damage, each loaded in a watched child.

Generated at test time from ``../shared/data`` by ``tests/fuzz/_damage.py``
(the long run of the same generator is ``tests/fuzz/damaged_files.py``).  Each
outcome must be LoadError naming the file, or the undamaged file's data
("different" data only where the format cannot tell, e.g. a flipped bit inside
raw samples); never another exception, a crash, a hang or non-finite samples.
The children run with the environment a user has (no ``PYTHONUNBUFFERED``).
"""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fuzz"))
import _damage  # noqa: E402


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    pytest.importorskip("nibabel")
    pytest.importorskip("pydicom")
    pytest.importorskip("av")
    cases = _damage.generate(shared_data, tmp_path_factory.mktemp("damaged"), level="quick")
    results = _damage.run(cases, timeout=60.0)
    return cases, results, _damage.classify(cases, results)


def test_every_damaged_file_gives_loaderror_or_the_original_data(corpus):
    cases, results, names = corpus
    bad = _damage.failures(cases, results, names)
    assert not bad, _damage.summary(cases, results, names)


def test_corpus_covers_every_data_type_and_damage(corpus):
    cases, _, names = corpus
    kinds = {c["source"] for c in cases}
    assert {"wav", "bvh", "png-grey", "npz", "npy", "nii", "nii.gz", "dcm", "mp4"} <= kinds
    damages = {c["damage"] for c in cases}
    assert damages == {"original", "truncate", "flip", "zeros", "append", "extension", "crafted"}
    assert len(cases) > 200 and names.count("LoadError") > 100


def test_the_harness_catches_crashes_and_hangs(tmp_path, monkeypatch):
    """A case that kills the child or never finishes is recorded; the cases after it still run."""
    good = tmp_path / "good.bvh"
    good.write_bytes(_damage._nested_bvh(3))
    case = {"source": "x", "damage": "original", "label": "", "path": str(good), "options": {},
            "strict": True}
    script = tmp_path / "child.py"
    script.write_text(  # the first child reports case 0, then dies on case 1
        f"import sys\nsys.path.insert(0, {str(pathlib.Path(_damage.__file__).parent)!r})\n"
        "import _damage, json, os, signal, pathlib\n"
        "if len(json.loads(pathlib.Path(sys.argv[2]).read_text())) == 3:\n"
        "    print(json.dumps({'outcome': 'LoadError', 'names_path': True}), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGSEGV)\n"
        "sys.exit(_damage._child(sys.argv[2]))\n")
    monkeypatch.setattr(_damage, "HERE", script)
    results = _damage.run([case, dict(case), dict(case)], timeout=20.0)
    assert results[0]["outcome"] == "LoadError"
    assert results[1]["outcome"] == "crash" and "SIGSEGV" in results[1]["message"]
    assert results[2]["outcome"] == "loaded"
    script.write_text("import time\ntime.sleep(60)\n")
    assert _damage.run([case], timeout=1.0)[0]["outcome"] == "hang"
