//! Errors: the C status code and the message from `dng_last_error()`.

use std::fmt;

use crate::sys;

/// What kind of failure the library reported (`dng_status`, without
/// `DNG_OK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// `DNG_ERR_INVALID_ARGUMENT`
    InvalidArgument,
    /// `DNG_ERR_SHAPE`
    Shape,
    /// `DNG_ERR_OUT_OF_MEMORY`
    OutOfMemory,
    /// `DNG_ERR_IO`
    Io,
    /// `DNG_ERR_FORMAT`: corrupt or unsupported file
    Format,
    /// `DNG_ERR_STATE`: call out of order
    State,
    /// `DNG_ERR_NUMERIC`: NaN or infinity found
    Numeric,
    /// `DNG_ERR_UNSUPPORTED`
    Unsupported,
    /// A code newer than these bindings.
    Other(i32),
}

impl Status {
    /// The status for a C code, or None for `DNG_OK` (0).
    pub fn from_code(code: i32) -> Option<Status> {
        Some(match code {
            sys::DNG_OK => return None,
            sys::DNG_ERR_INVALID_ARGUMENT => Status::InvalidArgument,
            sys::DNG_ERR_SHAPE => Status::Shape,
            sys::DNG_ERR_OUT_OF_MEMORY => Status::OutOfMemory,
            sys::DNG_ERR_IO => Status::Io,
            sys::DNG_ERR_FORMAT => Status::Format,
            sys::DNG_ERR_STATE => Status::State,
            sys::DNG_ERR_NUMERIC => Status::Numeric,
            sys::DNG_ERR_UNSUPPORTED => Status::Unsupported,
            other => Status::Other(other),
        })
    }

    /// The C code (negative).
    pub fn code(self) -> i32 {
        match self {
            Status::InvalidArgument => sys::DNG_ERR_INVALID_ARGUMENT,
            Status::Shape => sys::DNG_ERR_SHAPE,
            Status::OutOfMemory => sys::DNG_ERR_OUT_OF_MEMORY,
            Status::Io => sys::DNG_ERR_IO,
            Status::Format => sys::DNG_ERR_FORMAT,
            Status::State => sys::DNG_ERR_STATE,
            Status::Numeric => sys::DNG_ERR_NUMERIC,
            Status::Unsupported => sys::DNG_ERR_UNSUPPORTED,
            Status::Other(c) => c,
        }
    }

    /// The library's short description (`dng_status_string`).
    pub fn description(self) -> &'static str {
        // dng_status_string returns static ASCII strings, never NULL.
        unsafe { crate::cstr_to_str(sys::dng_status_string(self.code())) }
            .unwrap_or("unknown status")
    }
}

/// A failed call: the status and the library's message. The status is
/// None when the C function signals failure without one (a constructor
/// returning NULL, a lookup returning -1); the message is always there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: Option<Status>,
    message: String,
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error raised by the bindings themselves, before calling C.
    pub(crate) fn new(status: Status, message: String) -> Error {
        Error {
            status: Some(status),
            message,
        }
    }

    /// The calling thread's last library message, right after a failure.
    pub(crate) fn last(status: Option<Status>) -> Error {
        let message = unsafe {
            let p = sys::dng_last_error();
            if p.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        Error { status, message }
    }

    /// The status, or None when the C call reports failure without one.
    pub fn status(&self) -> Option<Status> {
        self.status
    }

    /// The message, which names the function and what is wrong, e.g.
    /// `dng_net_add: layer 1 (dense) does not fit the shape [8] coming
    /// from the previous layer: dense expects [4] features per sample`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} ({})", self.message, s.description()),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}
