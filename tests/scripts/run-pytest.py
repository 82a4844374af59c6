"""Run the Python test folder under pytest; 'nothing collected' (exit 5)
counts as success only when the folder holds no test files at all."""
import glob
import os
import sys

import pytest

folder = sys.argv[1]
code = pytest.main(["-q", "-p", "no:cacheprovider", folder])
if code == 5 and not glob.glob(os.path.join(folder, "test_*.py")):
    code = 0
sys.exit(int(code))
