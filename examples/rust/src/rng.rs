//! The library's counter-based random number generator.

use std::ptr::NonNull;

use crate::{check, non_null, sys, Result};

/// A Philox4x32-10 generator: same seed, same stream, on every host.
pub struct Rng {
    ptr: NonNull<sys::dng_rng>,
}

// One handle is used by one thread at a time; moving it is fine.
unsafe impl Send for Rng {}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Result<Rng> {
        Ok(Rng {
            ptr: non_null(unsafe { sys::dng_rng_create(seed) })?,
        })
    }

    /// Fill `out` with floats uniform in [lo, hi).
    pub fn uniform(&mut self, out: &mut [f32], lo: f32, hi: f32) -> Result<()> {
        check(unsafe {
            sys::dng_rng_uniform(
                self.as_mut_ptr(),
                out.as_mut_ptr(),
                out.len() as i64,
                lo,
                hi,
            )
        })
    }

    /// Fill `out` with floats from N(mean, std^2).
    pub fn normal(&mut self, out: &mut [f32], mean: f32, std: f32) -> Result<()> {
        check(unsafe {
            sys::dng_rng_normal(
                self.as_mut_ptr(),
                out.as_mut_ptr(),
                out.len() as i64,
                mean,
                std,
            )
        })
    }

    /// The complete state (key and counter).
    pub fn state(&self) -> Result<[u64; 4]> {
        let mut s = [0u64; 4];
        check(unsafe { sys::dng_rng_get_state(self.ptr.as_ptr(), s.as_mut_ptr()) })?;
        Ok(s)
    }

    /// Restore a state from [`Rng::state`].
    pub fn set_state(&mut self, state: &[u64; 4]) -> Result<()> {
        check(unsafe { sys::dng_rng_set_state(self.as_mut_ptr(), state.as_ptr()) })
    }

    /// The raw handle, for calls through [`crate::sys`].
    pub fn as_mut_ptr(&mut self) -> *mut sys::dng_rng {
        self.ptr.as_ptr()
    }
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rng")
            .field("state", &self.state().unwrap_or_default())
            .finish()
    }
}

impl Drop for Rng {
    fn drop(&mut self) {
        unsafe { sys::dng_rng_destroy(self.ptr.as_ptr()) }
    }
}

/// A C pointer for an optional generator (NULL selects the handle's own).
pub(crate) fn opt_rng(rng: Option<&mut Rng>) -> *mut sys::dng_rng {
    match rng {
        Some(r) => r.as_mut_ptr(),
        None => std::ptr::null_mut(),
    }
}
