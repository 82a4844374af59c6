//! Sequential networks and losses.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::{
    c_index, c_ndim, c_path, check, cstr_to_str, non_null, sys, Error, Layer, Result, Rng, Status,
    TensorRef,
};

/// Weight initialisation schemes for [`Net::init`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Init {
    /// PyTorch's reset_parameters (kaiming_uniform, a = sqrt(5)).
    Default,
    /// U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
    XavierUniform,
    /// N(0, 2 / fan_in).
    HeNormal,
    /// DCGAN's N(0, 0.02^2), batch-norm weights N(1, 0.02^2).
    Normal002,
}

impl Init {
    fn raw(self) -> sys::dng_init {
        match self {
            Init::Default => sys::DNG_INIT_DEFAULT,
            Init::XavierUniform => sys::DNG_INIT_XAVIER_UNIFORM,
            Init::HeNormal => sys::DNG_INIT_HE_NORMAL,
            Init::Normal002 => sys::DNG_INIT_NORMAL_002,
        }
    }
}

/// A sequential network; frees itself and its layers on drop.
pub struct Net {
    ptr: NonNull<sys::dng_net>,
}

// One handle is used by one thread at a time; moving it is fine.
unsafe impl Send for Net {}

impl Net {
    /// An empty network taking samples of `sample_shape` (no batch
    /// dimension).
    pub fn new(sample_shape: &[i64]) -> Result<Net> {
        let nd = c_ndim(sample_shape, "Net::new")?;
        Ok(Net {
            ptr: non_null(unsafe { sys::dng_net_create(nd, sample_shape.as_ptr()) })?,
        })
    }

    /// Load a network written by [`Net::save`].
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Net> {
        let p = c_path(path.as_ref(), "Net::load")?;
        Ok(Net {
            ptr: non_null(unsafe { sys::dng_net_load(p.as_ptr()) })?,
        })
    }

    /// Append a layer, which the network owns from now on (on failure the
    /// library frees it). Returns the network for chaining.
    pub fn add(&mut self, layer: Layer) -> Result<&mut Net> {
        // A Layer value never belongs to a network, so the one case where
        // dng_net_add leaves the layer to the caller cannot arise.
        check(unsafe { sys::dng_net_add(self.as_mut_ptr(), layer.into_raw()) })?;
        Ok(self)
    }

    /// Re-initialise every parameter with `scheme` from `rng`.
    pub fn init(&mut self, scheme: Init, rng: &mut Rng) -> Result<()> {
        check(unsafe { sys::dng_net_init(self.as_mut_ptr(), scheme.raw(), rng.as_mut_ptr()) })
    }

    /// Seed the generator of the dropout masks.
    pub fn set_seed(&mut self, seed: u64) -> Result<()> {
        check(unsafe { sys::dng_net_set_seed(self.as_mut_ptr(), seed) })
    }

    /// Run the network on a batch; the output is borrowed from the network
    /// until its next use.
    pub fn forward(&mut self, x: &TensorRef) -> Result<&mut TensorRef> {
        let mut y: *mut sys::dng_tensor = ptr::null_mut();
        check(unsafe { sys::dng_net_forward(self.as_mut_ptr(), x.as_ptr(), &mut y) })?;
        Ok(unsafe { TensorRef::from_ptr_mut(y) })
    }

    /// Backpropagate `dy`, accumulating the parameter gradients.
    pub fn backward(&mut self, dy: &TensorRef) -> Result<()> {
        check(unsafe { sys::dng_net_backward(self.as_mut_ptr(), dy.as_ptr(), ptr::null_mut()) })
    }

    /// Backpropagate `dy` and also return the gradient with respect to the
    /// last forward's input (borrowed from the network).
    pub fn backward_input(&mut self, dy: &TensorRef) -> Result<&mut TensorRef> {
        let mut dx: *mut sys::dng_tensor = ptr::null_mut();
        check(unsafe { sys::dng_net_backward(self.as_mut_ptr(), dy.as_ptr(), &mut dx) })?;
        Ok(unsafe { TensorRef::from_ptr_mut(dx) })
    }

    /// Set every parameter gradient to zero.
    pub fn zero_grad(&mut self) -> Result<()> {
        check(unsafe { sys::dng_net_zero_grad(self.as_mut_ptr()) })
    }

    /// Training (true, the default) or evaluation mode.
    pub fn set_training(&mut self, training: bool) -> Result<()> {
        check(unsafe { sys::dng_net_set_training(self.as_mut_ptr(), training as c_int) })
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        unsafe { sys::dng_net_num_layers(self.as_ptr()) }.max(0) as usize
    }

    /// The per-sample output shape (without the batch dimension).
    pub fn output_shape(&self) -> Result<Vec<i64>> {
        let mut nd: c_int = 0;
        let mut s = [0i64; sys::DNG_MAX_DIMS];
        check(unsafe { sys::dng_net_output_shape(self.as_ptr(), &mut nd, s.as_mut_ptr()) })?;
        Ok(s[..nd.max(0) as usize].to_vec())
    }

    /// Number of parameter tensors.
    pub fn num_params(&self) -> usize {
        unsafe { sys::dng_net_num_params(self.as_ptr()) }.max(0) as usize
    }

    fn tensor_at(
        &self,
        i: usize,
        f: unsafe extern "C" fn(*mut sys::dng_net, c_int) -> *mut sys::dng_tensor,
    ) -> *mut sys::dng_tensor {
        match c_index(i) {
            // The getters only look the tensor up; they take a non-const
            // network because the tensor they return is writable.
            Some(i) => unsafe { f(self.ptr.as_ptr(), i) },
            None => ptr::null_mut(),
        }
    }

    /// Parameter `i` (PyTorch layout), or None when out of range.
    pub fn param(&self, i: usize) -> Option<&TensorRef> {
        let p = self.tensor_at(i, sys::dng_net_param);
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr(p) })
    }

    /// Parameter `i`, writable.
    pub fn param_mut(&mut self, i: usize) -> Option<&mut TensorRef> {
        let p = self.tensor_at(i, sys::dng_net_param);
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr_mut(p) })
    }

    /// Gradient of parameter `i`.
    pub fn grad(&self, i: usize) -> Option<&TensorRef> {
        let p = self.tensor_at(i, sys::dng_net_grad);
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr(p) })
    }

    /// Gradient of parameter `i`, writable.
    pub fn grad_mut(&mut self, i: usize) -> Option<&mut TensorRef> {
        let p = self.tensor_at(i, sys::dng_net_grad);
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr_mut(p) })
    }

    /// Parameter `i` and its gradient together, both writable (they are
    /// distinct tensors), for hand-written update rules.
    pub fn param_and_grad_mut(&mut self, i: usize) -> Option<(&mut TensorRef, &mut TensorRef)> {
        let p = self.tensor_at(i, sys::dng_net_param);
        let g = self.tensor_at(i, sys::dng_net_grad);
        if p.is_null() || g.is_null() || p == g {
            return None;
        }
        Some(unsafe { (TensorRef::from_ptr_mut(p), TensorRef::from_ptr_mut(g)) })
    }

    /// Name of parameter `i`, e.g. "0.weight".
    pub fn param_name(&self, i: usize) -> Option<&str> {
        let i = c_index(i)?;
        unsafe { cstr_to_str(sys::dng_net_param_name(self.as_ptr(), i)) }
    }

    /// Index of the parameter called `name`.
    pub fn param_index(&self, name: &str) -> Result<usize> {
        let c = CString::new(name).map_err(|_| {
            Error::new(
                Status::InvalidArgument,
                format!("Net::param_index: name {:?} contains a NUL byte", name),
            )
        })?;
        let i = unsafe { sys::dng_net_param_index(self.as_ptr(), c.as_ptr()) };
        if i < 0 {
            // The C call reports a missing name by -1 and a message only.
            Err(Error::last(None))
        } else {
            Ok(i as usize)
        }
    }

    /// Number of state tensors (running statistics, spectral-norm vectors).
    pub fn num_buffers(&self) -> usize {
        unsafe { sys::dng_net_num_buffers(self.as_ptr()) }.max(0) as usize
    }

    /// State tensor `i`.
    pub fn buffer(&self, i: usize) -> Option<&TensorRef> {
        let p = self.tensor_at(i, sys::dng_net_buffer);
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr(p) })
    }

    /// State tensor `i`, writable.
    pub fn buffer_mut(&mut self, i: usize) -> Option<&mut TensorRef> {
        let p = self.tensor_at(i, sys::dng_net_buffer);
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr_mut(p) })
    }

    /// Name of state tensor `i`, e.g. "1.running_mean".
    pub fn buffer_name(&self, i: usize) -> Option<&str> {
        let i = c_index(i)?;
        unsafe { cstr_to_str(sys::dng_net_buffer_name(self.as_ptr(), i)) }
    }

    /// Total number of trainable scalars.
    pub fn param_count(&self) -> i64 {
        unsafe { sys::dng_net_param_count(self.as_ptr()) }
    }

    /// One line per layer with its output shape and parameter count.
    pub fn summary(&self) -> Result<String> {
        let mut len = 4096usize;
        loop {
            let mut buf = vec![0u8; len];
            let s = unsafe {
                sys::dng_net_summary(self.as_ptr(), buf.as_mut_ptr() as *mut c_char, buf.len())
            };
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            // A cut text is reported as an invalid argument with the
            // buffer full: try again with more room.
            if s == sys::DNG_ERR_INVALID_ARGUMENT && end + 1 >= len && len < (1 << 26) {
                len *= 4;
                continue;
            }
            check(s)?;
            buf.truncate(end);
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
    }

    /// Save architecture and weights (see doc/file-format.md).
    pub fn save<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let p = c_path(path.as_ref(), "Net::save")?;
        check(unsafe { sys::dng_net_save(self.as_ptr(), p.as_ptr()) })
    }

    /// Export parameters and state as safetensors (PyTorch names).
    pub fn save_safetensors<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let p = c_path(path.as_ref(), "Net::save_safetensors")?;
        check(unsafe { sys::dng_net_save_safetensors(self.as_ptr(), p.as_ptr()) })
    }

    /// Import parameters and state from safetensors into this network.
    pub fn load_safetensors<P: AsRef<Path>>(&mut self, path: P) -> Result<()> {
        let p = c_path(path.as_ref(), "Net::load_safetensors")?;
        check(unsafe { sys::dng_net_load_safetensors(self.as_mut_ptr(), p.as_ptr()) })
    }

    /// Copy every parameter and state tensor of `src` (same architecture).
    pub fn copy_weights_from(&mut self, src: &Net) -> Result<()> {
        check(unsafe { sys::dng_net_copy_weights(self.as_mut_ptr(), src.as_ptr()) })
    }

    /// The raw handle, for calls through [`crate::sys`].
    pub fn as_ptr(&self) -> *const sys::dng_net {
        self.ptr.as_ptr()
    }

    /// The raw handle, for calls through [`crate::sys`].
    pub fn as_mut_ptr(&mut self) -> *mut sys::dng_net {
        self.ptr.as_ptr()
    }
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("layers", &self.num_layers())
            .field("output_shape", &self.output_shape().unwrap_or_default())
            .field("param_count", &self.param_count())
            .finish()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        unsafe { sys::dng_net_destroy(self.ptr.as_ptr()) }
    }
}

/// Loss functions, all with PyTorch's 'mean' reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossKind {
    /// mean of (pred - target)^2
    Mse,
    /// mean binary cross-entropy of sigmoid(pred) against targets in [0, 1]
    BceWithLogits,
    /// pred [N, C] logits, target `[N]` class indices as floats
    CrossEntropy,
    /// mean of max(0, 1 - target * pred), targets -1 or +1
    Hinge,
}

impl LossKind {
    pub(crate) fn raw(self) -> sys::dng_loss_kind {
        match self {
            LossKind::Mse => sys::DNG_LOSS_MSE,
            LossKind::BceWithLogits => sys::DNG_LOSS_BCE_WITH_LOGITS,
            LossKind::CrossEntropy => sys::DNG_LOSS_CROSS_ENTROPY,
            LossKind::Hinge => sys::DNG_LOSS_HINGE,
        }
    }
}

/// The loss of `pred` against `target`.
pub fn loss(kind: LossKind, pred: &TensorRef, target: &TensorRef) -> Result<f32> {
    let mut v = 0.0f32;
    check(unsafe {
        sys::dng_loss(
            kind.raw(),
            pred.as_ptr(),
            target.as_ptr(),
            &mut v,
            ptr::null_mut(),
        )
    })?;
    Ok(v)
}

/// The loss, with its gradient with respect to `pred` written into `grad`
/// (same shape as `pred`).
pub fn loss_grad(
    kind: LossKind,
    pred: &TensorRef,
    target: &TensorRef,
    grad: &mut TensorRef,
) -> Result<f32> {
    let mut v = 0.0f32;
    check(unsafe {
        sys::dng_loss(
            kind.raw(),
            pred.as_ptr(),
            target.as_ptr(),
            &mut v,
            grad.as_mut_ptr(),
        )
    })?;
    Ok(v)
}
