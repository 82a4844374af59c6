//! Tensors: owned ([`Tensor`]), borrowed ([`TensorRef`]) and zero-copy
//! views of Rust memory ([`TensorView`]).

use std::fmt;
use std::marker::{PhantomData, PhantomPinned};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::ptr::NonNull;

use crate::{c_ndim, c_path, check, non_null, sys, Error, Result, Rng, Status};

/// A tensor owned by someone else: a network's output or parameter, a
/// dataset's samples, or the inside of a [`Tensor`]. Only ever seen as
/// `&TensorRef` or `&mut TensorRef`, whose lifetime ties it to its owner
/// (the C rule "borrowed until the next call on the same handle").
///
/// It is a zero-sized stand-in for the C `dng_tensor`: the reference is
/// the C pointer.
#[repr(C)]
pub struct TensorRef {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

impl TensorRef {
    /// View a C tensor pointer as a shared reference.
    ///
    /// # Safety
    /// `p` is a live, non-NULL tensor that nothing mutates during `'a`.
    pub unsafe fn from_ptr<'a>(p: *const sys::dng_tensor) -> &'a TensorRef {
        &*(p as *const TensorRef)
    }

    /// View a C tensor pointer as an exclusive reference.
    ///
    /// # Safety
    /// `p` is a live, non-NULL tensor that nothing else uses during `'a`.
    pub unsafe fn from_ptr_mut<'a>(p: *mut sys::dng_tensor) -> &'a mut TensorRef {
        &mut *(p as *mut TensorRef)
    }

    /// The raw handle, for calls through [`crate::sys`].
    pub fn as_ptr(&self) -> *const sys::dng_tensor {
        self as *const TensorRef as *const sys::dng_tensor
    }

    /// The raw handle, for calls through [`crate::sys`].
    pub fn as_mut_ptr(&mut self) -> *mut sys::dng_tensor {
        self as *mut TensorRef as *mut sys::dng_tensor
    }

    /// Number of dimensions (1 to [`crate::MAX_DIMS`]).
    pub fn ndim(&self) -> usize {
        unsafe { sys::dng_tensor_ndim(self.as_ptr()) }.max(0) as usize
    }

    /// The shape, batch dimension first.
    pub fn shape(&self) -> Vec<i64> {
        let mut s = [0i64; sys::DNG_MAX_DIMS];
        // A live tensor always has a shape; on the impossible failure the
        // zeros make the mistake visible rather than undefined.
        let _ = unsafe { sys::dng_tensor_shape(self.as_ptr(), s.as_mut_ptr()) };
        s[..self.ndim()].to_vec()
    }

    /// Size of dimension `axis`; negative counts from the end. None when
    /// out of range.
    pub fn dim(&self, axis: isize) -> Option<i64> {
        if axis < i32::MIN as isize || axis > i32::MAX as isize {
            return None;
        }
        let d = unsafe { sys::dng_tensor_dim(self.as_ptr(), axis as i32) };
        if d < 0 {
            None
        } else {
            Some(d)
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        unsafe { sys::dng_tensor_numel(self.as_ptr()) }.max(0) as usize
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[f32] {
        // dng_tensor_data only reads the handle; the cast drops a const
        // that the C signature lacks.
        let p = unsafe { sys::dng_tensor_data(self.as_ptr() as *mut sys::dng_tensor) };
        if p.is_null() {
            &[]
        } else {
            unsafe { std::slice::from_raw_parts(p, self.numel()) }
        }
    }

    /// The elements in row-major order, writable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        let n = self.numel();
        let p = unsafe { sys::dng_tensor_data(self.as_mut_ptr()) };
        if p.is_null() {
            &mut []
        } else {
            unsafe { std::slice::from_raw_parts_mut(p, n) }
        }
    }

    /// A copy of the elements (`dng_tensor_copy_out`).
    pub fn to_vec(&self) -> Vec<f32> {
        let n = self.numel();
        let mut v = vec![0.0f32; n];
        // The capacity equals numel, the one condition copy_out checks.
        let _ = unsafe { sys::dng_tensor_copy_out(self.as_ptr(), v.as_mut_ptr(), n as i64) };
        v
    }

    /// Overwrite the elements with `src`, which must hold exactly numel
    /// floats (`dng_tensor_copy_in`).
    pub fn copy_from_slice(&mut self, src: &[f32]) -> Result<()> {
        check(unsafe { sys::dng_tensor_copy_in(self.as_mut_ptr(), src.as_ptr(), src.len() as i64) })
    }

    /// Set every element to `value`.
    pub fn fill(&mut self, value: f32) -> Result<()> {
        check(unsafe { sys::dng_tensor_fill(self.as_mut_ptr(), value) })
    }

    /// Fill with floats uniform in [lo, hi) from `rng`.
    pub fn fill_uniform(&mut self, rng: &mut Rng, lo: f32, hi: f32) -> Result<()> {
        check(unsafe { sys::dng_tensor_fill_uniform(self.as_mut_ptr(), rng.as_mut_ptr(), lo, hi) })
    }

    /// Fill with floats from N(mean, std^2) drawn from `rng`.
    pub fn fill_normal(&mut self, rng: &mut Rng, mean: f32, std: f32) -> Result<()> {
        check(unsafe {
            sys::dng_tensor_fill_normal(self.as_mut_ptr(), rng.as_mut_ptr(), mean, std)
        })
    }

    /// Save as a NumPy .npy file (float32, C order).
    pub fn save_npy<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let p = c_path(path.as_ref(), "TensorRef::save_npy")?;
        check(unsafe { sys::dng_tensor_save_npy(self.as_ptr(), p.as_ptr()) })
    }

    /// An owned copy.
    pub fn to_tensor(&self) -> Result<Tensor> {
        Tensor::from_slice(&self.shape(), self.as_slice())
    }
}

impl fmt::Debug for TensorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.as_slice();
        let shown = &data[..data.len().min(8)];
        write!(f, "Tensor(shape={:?}, data={:?}", self.shape(), shown)?;
        if data.len() > shown.len() {
            write!(f, " ... {} more", data.len() - shown.len())?;
        }
        f.write_str(")")
    }
}

/// Product of a shape when every size is at least 1; None otherwise (the
/// library then rejects the shape with its own message).
fn numel_of(shape: &[i64]) -> Option<usize> {
    let mut n: usize = 1;
    for &d in shape {
        if d < 1 {
            return None;
        }
        n = n.checked_mul(usize::try_from(d).ok()?)?;
    }
    Some(n)
}

fn check_len(shape: &[i64], len: usize, func: &str) -> Result<()> {
    match numel_of(shape) {
        Some(n) if n != len => Err(Error::new(
            Status::Shape,
            format!(
                "{}: data has {} floats but shape {:?} needs {}",
                func, len, shape, n
            ),
        )),
        _ => Ok(()),
    }
}

/// A tensor owned by Rust; freed on drop. Dereferences to [`TensorRef`]
/// for everything but construction and reshaping.
pub struct Tensor {
    ptr: NonNull<sys::dng_tensor>,
}

// One handle is used by one thread at a time; moving it is fine.
unsafe impl Send for Tensor {}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: &[i64]) -> Result<Tensor> {
        let nd = c_ndim(shape, "Tensor::zeros")?;
        Ok(Tensor {
            ptr: non_null(unsafe { sys::dng_tensor_create(nd, shape.as_ptr()) })?,
        })
    }

    /// A tensor holding a copy of `data`, which must have exactly as many
    /// elements as `shape` describes.
    pub fn from_slice(shape: &[i64], data: &[f32]) -> Result<Tensor> {
        let nd = c_ndim(shape, "Tensor::from_slice")?;
        check_len(shape, data.len(), "Tensor::from_slice")?;
        Ok(Tensor {
            ptr: non_null(unsafe { sys::dng_tensor_from_data(nd, shape.as_ptr(), data.as_ptr()) })?,
        })
    }

    /// A tensor holding the values of `data` (copied into the library's
    /// own aligned memory).
    pub fn from_vec(shape: &[i64], data: Vec<f32>) -> Result<Tensor> {
        Tensor::from_slice(shape, &data)
    }

    /// A zero-copy view of `data`: the library reads and writes the
    /// caller's memory, which the borrow keeps alive and unmoved.
    pub fn wrap<'a>(shape: &[i64], data: &'a mut [f32]) -> Result<TensorView<'a>> {
        let nd = c_ndim(shape, "Tensor::wrap")?;
        check_len(shape, data.len(), "Tensor::wrap")?;
        Ok(TensorView {
            ptr: non_null(unsafe { sys::dng_tensor_wrap(nd, shape.as_ptr(), data.as_mut_ptr()) })?,
            _data: PhantomData,
        })
    }

    /// Load a float32 C-order .npy file.
    pub fn load_npy<P: AsRef<Path>>(path: P) -> Result<Tensor> {
        let p = c_path(path.as_ref(), "Tensor::load_npy")?;
        Ok(Tensor {
            ptr: non_null(unsafe { sys::dng_tensor_load_npy(p.as_ptr()) })?,
        })
    }

    /// Give the tensor a new shape with the same element count.
    pub fn reshape(&mut self, shape: &[i64]) -> Result<()> {
        let nd = c_ndim(shape, "Tensor::reshape")?;
        check(unsafe { sys::dng_tensor_reshape(self.ptr.as_ptr(), nd, shape.as_ptr()) })
    }

    /// A copy that can fail on allocation instead of panicking.
    pub fn try_clone(&self) -> Result<Tensor> {
        self.to_tensor()
    }

    /// The elements as a Vec.
    pub fn into_vec(self) -> Vec<f32> {
        self.to_vec()
    }
}

impl Deref for Tensor {
    type Target = TensorRef;
    fn deref(&self) -> &TensorRef {
        unsafe { TensorRef::from_ptr(self.ptr.as_ptr()) }
    }
}

impl DerefMut for Tensor {
    fn deref_mut(&mut self) -> &mut TensorRef {
        unsafe { TensorRef::from_ptr_mut(self.ptr.as_ptr()) }
    }
}

impl AsRef<TensorRef> for Tensor {
    fn as_ref(&self) -> &TensorRef {
        self
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Drop for Tensor {
    fn drop(&mut self) {
        unsafe { sys::dng_tensor_destroy(self.ptr.as_ptr()) }
    }
}

/// A tensor over Rust memory borrowed for `'a` (see [`Tensor::wrap`]).
pub struct TensorView<'a> {
    ptr: NonNull<sys::dng_tensor>,
    _data: PhantomData<&'a mut [f32]>,
}

unsafe impl Send for TensorView<'_> {}

impl Deref for TensorView<'_> {
    type Target = TensorRef;
    fn deref(&self) -> &TensorRef {
        unsafe { TensorRef::from_ptr(self.ptr.as_ptr()) }
    }
}

impl DerefMut for TensorView<'_> {
    fn deref_mut(&mut self) -> &mut TensorRef {
        unsafe { TensorRef::from_ptr_mut(self.ptr.as_ptr()) }
    }
}

impl fmt::Debug for TensorView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl Drop for TensorView<'_> {
    fn drop(&mut self) {
        // Frees the handle only: wrapped memory belongs to the caller.
        unsafe { sys::dng_tensor_destroy(self.ptr.as_ptr()) }
    }
}
