"""The bad-input catalogue: nothing a user passes to sigconv.functional crashes, hangs or is ignored.

The cases come from the generator of ``tests/fuzz/bad_arguments.py`` (its
quick level): every public op of :mod:`sigconv.functional` with wrong shapes
and dtypes, negative / zero / huge / float / bool / None / str values for
each int option, bad flags, choices and reals, huge windows, strides,
paddings and dilations, and damaged Ragged layouts.  They run in batches in
child processes with an address-space limit and a per-case alarm (a case
whose child dies is run again alone), so a segfault, a hang or a runaway
allocation fails its case instead of killing the suite.

A bad argument must raise a :class:`sigconv.errors.SigconvError` whose
message names the argument; an extreme but possibly valid one may return
(a finite result for finite input) or raise a ``SigconvError``.  The long
run of the same generator: ``python tests/fuzz/bad_arguments.py``.
"""
import pytest

from .fuzz import bad_arguments as catalogue

CASES = catalogue.generate("quick")


@pytest.fixture(scope="module")
def outcomes():
    return catalogue.run(CASES, level="quick", memory=4 << 30, timeout=30.0, batch=1000)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(outcomes, case):
    result = outcomes[case.id]
    assert result["outcome"] in catalogue.PASSING, (
        f"{case.id} (expected {case.expect!r}, message matching {case.names!r}): "
        f"{result['outcome']}: {result['detail']}")
    if case.expect == "error":
        assert result["outcome"] in ("library error", "refused mutation")
