"""Shared setup of the dnngen binding tests.

Thread counts are pinned to one before the library loads, so the numbers
do not depend on the machine and the suite does not compete with itself.
The package is imported from the source tree (examples/python), and the
library is the one dnngen finds: meson passes DNG_LIBRARY, the freshly
built libdnngen.so.
"""
import os
import sys

for _var in ("OMP_NUM_THREADS", "BLIS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)                     # examples/python
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))    # the source tree
if PKG_ROOT not in sys.path:
    sys.path.insert(0, PKG_ROOT)

import dnngen  # noqa: E402

dnngen.set_num_threads(1)


def pytest_report_header(config):
    return "dnngen binding over %s (libdnngen %s)" % (
        dnngen.library_path, dnngen.version_string())
