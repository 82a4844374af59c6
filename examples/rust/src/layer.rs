//! Layers, built on their own and then moved into a [`crate::Net`].

use std::ptr::NonNull;

use crate::{c_ndim, non_null, sys, Result};

/// Activation functions for [`Layer::activation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Act {
    /// max(0, x)
    Relu,
    /// x if x > 0 else param * x
    LeakyRelu,
    /// 1 / (1 + exp(-x))
    Sigmoid,
    /// tanh(x)
    Tanh,
    /// exp(x_i) / sum_j exp(x_j) over the features
    Softmax,
    /// x * Phi(x), the exact (erf) form
    Gelu,
    /// x
    Identity,
}

impl Act {
    fn raw(self) -> sys::dng_act {
        match self {
            Act::Relu => sys::DNG_ACT_RELU,
            Act::LeakyRelu => sys::DNG_ACT_LEAKY_RELU,
            Act::Sigmoid => sys::DNG_ACT_SIGMOID,
            Act::Tanh => sys::DNG_ACT_TANH,
            Act::Softmax => sys::DNG_ACT_SOFTMAX,
            Act::Gelu => sys::DNG_ACT_GELU,
            Act::Identity => sys::DNG_ACT_IDENTITY,
        }
    }
}

/// A layer not yet in a network. Dropping it frees it; [`crate::Net::add`]
/// moves it into the network, which owns it from then on.
pub struct Layer {
    ptr: NonNull<sys::dng_layer>,
}

// One handle is used by one thread at a time; moving it is fine.
unsafe impl Send for Layer {}

impl Layer {
    fn wrap(p: *mut sys::dng_layer) -> Result<Layer> {
        Ok(Layer { ptr: non_null(p)? })
    }

    /// Fully connected y = x W^T + b on [N, in]; W is [out, in].
    pub fn dense(in_features: i64, out_features: i64) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_dense(in_features, out_features) })
    }

    /// 2-D convolution on [N, in_ch, H, W], square stride, zero padding.
    pub fn conv2d(
        in_ch: i64,
        out_ch: i64,
        kh: i32,
        kw: i32,
        stride: i32,
        pad: i32,
    ) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_conv2d(in_ch, out_ch, kh, kw, stride, pad) })
    }

    /// 2-D transposed convolution; H' = (H - 1) stride - 2 pad + kh.
    pub fn conv2d_transpose(
        in_ch: i64,
        out_ch: i64,
        kh: i32,
        kw: i32,
        stride: i32,
        pad: i32,
    ) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_conv2d_transpose(in_ch, out_ch, kh, kw, stride, pad) })
    }

    /// Max pooling over k x k windows.
    pub fn maxpool2d(k: i32, stride: i32) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_maxpool2d(k, stride) })
    }

    /// Average pooling over k x k windows.
    pub fn avgpool2d(k: i32, stride: i32) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_avgpool2d(k, stride) })
    }

    /// Batch normalisation over [N, C] or [N, C, H, W].
    pub fn batchnorm(channels: i64) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_batchnorm(channels) })
    }

    /// Layer normalisation over the last dimension.
    pub fn layernorm(features: i64) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_layernorm(features) })
    }

    /// Dropout with drop probability `p` in [0, 1).
    pub fn dropout(p: f32) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_dropout(p) })
    }

    /// An activation; `param` is the negative slope of `Act::LeakyRelu`.
    pub fn activation(kind: Act, param: f32) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_activation(kind.raw(), param) })
    }

    /// `Act::Relu`.
    pub fn relu() -> Result<Layer> {
        Layer::activation(Act::Relu, 0.0)
    }

    /// `Act::LeakyRelu` with negative slope `slope`.
    pub fn leaky_relu(slope: f32) -> Result<Layer> {
        Layer::activation(Act::LeakyRelu, slope)
    }

    /// `Act::Sigmoid`.
    pub fn sigmoid() -> Result<Layer> {
        Layer::activation(Act::Sigmoid, 0.0)
    }

    /// `Act::Tanh`.
    pub fn tanh() -> Result<Layer> {
        Layer::activation(Act::Tanh, 0.0)
    }

    /// `Act::Softmax`.
    pub fn softmax() -> Result<Layer> {
        Layer::activation(Act::Softmax, 0.0)
    }

    /// `Act::Gelu`.
    pub fn gelu() -> Result<Layer> {
        Layer::activation(Act::Gelu, 0.0)
    }

    /// Reshape each sample to `shape` (the batch dimension is kept).
    pub fn reshape(shape: &[i64]) -> Result<Layer> {
        let nd = c_ndim(shape, "Layer::reshape")?;
        Layer::wrap(unsafe { sys::dng_reshape(nd, shape.as_ptr()) })
    }

    /// Flatten each sample to one dimension.
    pub fn flatten() -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_flatten() })
    }

    /// Spectral normalisation of a dense or convolution layer, which it
    /// takes over (also when it fails).
    pub fn spectral_norm(inner: Layer) -> Result<Layer> {
        Layer::wrap(unsafe { sys::dng_spectral_norm(inner.into_raw()) })
    }

    /// Give up ownership: the returned pointer must go to a C function
    /// that takes the layer over, or back to `dng_layer_destroy`.
    pub fn into_raw(self) -> *mut sys::dng_layer {
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer").field("ptr", &self.ptr).finish()
    }
}

impl Drop for Layer {
    fn drop(&mut self) {
        unsafe { sys::dng_layer_destroy(self.ptr.as_ptr()) }
    }
}
