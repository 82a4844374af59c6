#!/usr/bin/python3
"""Regenerate the .npy fixtures of tests/test-io.c with NumPy.

Run from tests/data: /usr/bin/python3 make-npy-fixtures.py
The files are committed; test-io.c checks the values written here.
"""
import numpy as np

a = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5 - 3.0)
np.save('npy-f32-3d.npy', a.astype(np.float32))
np.save('npy-f32-1d.npy',
        np.array([1.5, -2.25, 0.0, 1e-3, 65504.0], dtype=np.float32))
np.save('npy-f64.npy', np.arange(6, dtype=np.float64).reshape(2, 3))
np.save('npy-fortran.npy',
        np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
with open('npy-f32-v2.npy', 'wb') as f:
    np.lib.format.write_array(
        f, np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32),
        version=(2, 0))
