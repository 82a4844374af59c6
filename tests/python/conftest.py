"""Shared setup of the PyTorch comparison tests.

Thread counts are pinned to one before torch is imported, so that the
reference numbers do not depend on the machine and the suite does not
compete with itself for the two cores. The library under test is the one
named by DNG_LIBRARY (meson passes the freshly built libdnngen.so).
"""
import os

for _var in ("OMP_NUM_THREADS", "BLIS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402
import torch  # noqa: E402

import dngtest  # noqa: E402

torch.set_num_threads(1)


def pytest_report_header(config):
    return "libdnngen: %s; torch %s" % (dngtest.LIBRARY, torch.__version__)


@pytest.fixture(scope="session", autouse=True)
def library():
    if not dngtest.LIBRARY or not os.path.exists(dngtest.LIBRARY):
        pytest.fail("DNG_LIBRARY must name the built libdnngen.so (got %r)"
                    % dngtest.LIBRARY)
    L = dngtest.lib()
    L.dng_set_num_threads(1)
    return L

