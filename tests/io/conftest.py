"""Fixtures of the io tests: paths of real files shipped with nibabel and pydicom."""
import os

import pytest


@pytest.fixture(scope="session")
def nibabel_data():
    nibabel = pytest.importorskip("nibabel")
    return os.path.join(os.path.dirname(nibabel.__file__), "tests", "data")


@pytest.fixture(scope="session")
def ct_small():
    pydicom_data = pytest.importorskip("pydicom.data")
    return pydicom_data.get_testdata_file("CT_small.dcm")


@pytest.fixture(scope="session")
def fsdd(shared_data):
    return shared_data / "fsdd" / "recordings"
