//! The trampoline between C progress callbacks and Rust closures.
//!
//! The C functions take a plain function pointer and a `void *user`; the
//! user pointer carries a [`Callback`] holding the closure. A panic in the
//! closure must not unwind into C (undefined behaviour, or an abort in
//! recent Rust), so it is caught, training is asked to stop, and the
//! panic resumes once the C function has returned.

use std::any::Any;
use std::ops::ControlFlow;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

pub(crate) struct Callback<'f, P> {
    f: &'f mut dyn FnMut(&P) -> ControlFlow<()>,
    panic: Option<Box<dyn Any + Send + 'static>>,
}

impl<'f, P> Callback<'f, P> {
    pub(crate) fn new(f: &'f mut dyn FnMut(&P) -> ControlFlow<()>) -> Self {
        Callback { f, panic: None }
    }

    /// The `void *user` for the C call.
    pub(crate) fn user(&mut self) -> *mut c_void {
        self as *mut Self as *mut c_void
    }

    /// After the C call: re-raise a panic caught in the closure.
    pub(crate) fn finish(self) {
        if let Some(p) = self.panic {
            resume_unwind(p);
        }
    }
}

/// Run the closure behind `user` on the progress that `make` builds;
/// returns the C callback's answer (non-zero stops training).
///
/// # Safety
/// `user` is the pointer from [`Callback::user`] of a live `Callback<P>`.
pub(crate) unsafe fn invoke<P, M: FnOnce() -> P>(user: *mut c_void, make: M) -> c_int {
    let cb = &mut *(user as *mut Callback<'_, P>);
    if cb.panic.is_some() {
        return 1;
    }
    let f = &mut cb.f;
    match catch_unwind(AssertUnwindSafe(|| f(&make()))) {
        Ok(ControlFlow::Continue(())) => 0,
        Ok(ControlFlow::Break(())) => 1,
        Err(p) => {
            cb.panic = Some(p);
            1
        }
    }
}
