//! Safe Rust bindings to libdnngen, a C library that builds, trains and
//! runs deep neural networks, GANs first.
//!
//! The raw C API is in [`sys`]; everything else wraps it so that safe code
//! cannot misuse it:
//!
//! - every handle frees itself on drop ([`Tensor`], [`Layer`], [`Net`],
//!   [`Optim`], [`Dataset`], [`Rng`], [`Gan`]);
//! - failures come back as [`Error`], which carries the C status and the
//!   message from `dng_last_error()`;
//! - tensors the library lends out (a network's output, parameters and
//!   gradients, a dataset's samples) are `&TensorRef` / `&mut TensorRef`
//!   borrowed from their owner, so the borrow checker enforces the C
//!   rule "valid until the next call on the same handle";
//! - [`Net::add`] takes its [`Layer`] by value: the network owns it from
//!   then on, in C as in Rust;
//! - progress callbacks are closures, run through a trampoline that
//!   catches panics so that none unwinds through C.
//!
//! ```
//! use dnngen::{Layer, LossKind, Net, Optim, Tensor};
//! # fn main() -> dnngen::Result<()> {
//! let mut net = Net::new(&[2])?;
//! net.add(Layer::dense(2, 8)?)?
//!     .add(Layer::tanh()?)?
//!     .add(Layer::dense(8, 1)?)?;
//! let mut opt = Optim::adam(0.05, 0.9, 0.999, 1e-8, 0.0)?;
//! let x = Tensor::from_slice(&[4, 2], &[0., 0., 0., 1., 1., 0., 1., 1.])?;
//! let t = Tensor::from_slice(&[4, 1], &[0., 1., 1., 0.])?;
//! let mut dy = Tensor::zeros(&[4, 1])?;
//! for _ in 0..500 {
//!     net.zero_grad()?;
//!     let y = net.forward(&x)?;
//!     dnngen::loss_grad(LossKind::BceWithLogits, y, &t, &mut dy)?;
//!     net.backward(&dy)?;
//!     opt.step(&mut net)?;
//! }
//! let logits = net.forward(&x)?.to_vec();
//! assert!(logits[0] < 0.0 && logits[1] > 0.0 && logits[2] > 0.0 && logits[3] < 0.0);
//! # Ok(())
//! # }
//! ```
//!
//! The crate links to the library through `pkg-config` (see `build.rs`).

pub mod sys;

mod callback;
mod data;
mod error;
mod gan;
mod layer;
mod net;
mod optim;
mod rng;
mod tensor;

pub use data::{evaluate, fit, Dataset, Evaluation, FitOptions, FitProgress};
pub use error::{Error, Result, Status};
pub use gan::{Gan, GanLoss, GanProgress, GanStats, Noise};
pub use layer::{Act, Layer};
pub use net::{loss, loss_grad, Init, LossKind, Net};
pub use optim::{Optim, Schedule};
pub use rng::Rng;
pub use tensor::{Tensor, TensorRef, TensorView};

/// `std::ops::ControlFlow`, re-exported: progress callbacks return
/// `ControlFlow::Continue(())` to go on or `ControlFlow::Break(())` to
/// stop training early (which is not an error).
pub use std::ops::ControlFlow;

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::path::Path;

/// The largest number of dimensions a tensor may have.
pub const MAX_DIMS: usize = sys::DNG_MAX_DIMS;

/// The loaded library's version as one integer, major * 10000 + minor *
/// 100 + patch.
pub fn version() -> i32 {
    unsafe { sys::dng_version() }
}

/// The loaded library's version as a string such as "0.1.0".
pub fn version_string() -> &'static str {
    // The string is static in the library and plain ASCII.
    unsafe { cstr_to_str(sys::dng_version_string()) }.unwrap_or("")
}

/// Set how many threads the library uses (0 = all processors), for the
/// whole process. Results do not depend on it.
pub fn set_num_threads(n: i32) -> Result<()> {
    check(unsafe { sys::dng_set_num_threads(n) })
}

/// The thread count in force.
pub fn num_threads() -> i32 {
    unsafe { sys::dng_get_num_threads() }
}

/// Write `images` [N, C, H, W] (C = 1 or 3, values in [-1, 1]) as a grid
/// of `cols` columns: PNG for a ".png" path (when the library has libpng),
/// binary PGM/PPM otherwise.
pub fn write_image_grid<P: AsRef<Path>>(images: &TensorRef, cols: i32, path: P) -> Result<()> {
    let p = c_path(path.as_ref(), "write_image_grid")?;
    check(unsafe { sys::dng_write_image_grid(images.as_ptr(), cols, p.as_ptr()) })
}

/// Fréchet distance between feature sets `a` [N, D] and `b` [M, D].
pub fn frechet_distance(a: &TensorRef, b: &TensorRef) -> Result<f64> {
    let mut out = 0.0f64;
    check(unsafe { sys::dng_frechet_distance(a.as_ptr(), b.as_ptr(), &mut out) })?;
    Ok(out)
}

// ---- helpers shared by the modules ------------------------------------

/// Turn a status into a `Result`, reading the message on failure.
pub(crate) fn check(status: sys::dng_status) -> Result<()> {
    if status == sys::DNG_OK {
        Ok(())
    } else {
        Err(Error::last(Status::from_code(status)))
    }
}

/// A constructor's result: a handle, or the library's message for NULL.
pub(crate) fn non_null<T>(ptr: *mut T) -> Result<std::ptr::NonNull<T>> {
    std::ptr::NonNull::new(ptr).ok_or_else(|| Error::last(None))
}

/// A borrowed C string as &str, or None for NULL or invalid UTF-8.
pub(crate) unsafe fn cstr_to_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        CStr::from_ptr(p).to_str().ok()
    }
}

/// A path as a NUL-terminated C string.
pub(crate) fn c_path(path: &Path, func: &str) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    CString::new(bytes).map_err(|_| {
        Error::new(
            Status::InvalidArgument,
            format!("{}: path {:?} contains a NUL byte", func, path),
        )
    })
}

/// A shape's length as the C `ndim`, checked so that it cannot wrap.
pub(crate) fn c_ndim(shape: &[i64], func: &str) -> Result<c_int> {
    if shape.is_empty() || shape.len() > MAX_DIMS {
        return Err(Error::new(
            Status::InvalidArgument,
            format!(
                "{}: shape has {} dimensions, must have 1 to {}",
                func,
                shape.len(),
                MAX_DIMS
            ),
        ));
    }
    Ok(shape.len() as c_int)
}

/// An index as a C int, or None when it cannot be one.
pub(crate) fn c_index(i: usize) -> Option<c_int> {
    if i <= c_int::MAX as usize {
        Some(i as c_int)
    } else {
        None
    }
}
