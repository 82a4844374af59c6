//! Raw declarations of the whole public C API of `include/dnngen.h`.
//!
//! Everything here is `unsafe` and mirrors the header one to one: opaque
//! handles are zero-sized `#[repr(C)]` types only ever used behind raw
//! pointers, C enums are `c_int` with their numbers as constants (a Rust
//! enum receiving an unknown value from C would be undefined behaviour),
//! and the option/report structs are `#[repr(C)]` with the header's field
//! order. The safe wrapper in the crate root is built on these.

#![allow(non_camel_case_types)]

use std::marker::{PhantomData, PhantomPinned};
use std::os::raw::{c_char, c_double, c_float, c_int, c_void};

macro_rules! opaque {
    ($($name:ident),*) => {$(
        /// An opaque C handle; only ever used behind a raw pointer.
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque!(
    dng_rng,
    dng_tensor,
    dng_layer,
    dng_net,
    dng_optim,
    dng_dataset,
    dng_gan
);

/// `dng_status`: 0 is success, errors are negative.
pub type dng_status = c_int;
pub const DNG_OK: dng_status = 0;
pub const DNG_ERR_INVALID_ARGUMENT: dng_status = -1;
pub const DNG_ERR_SHAPE: dng_status = -2;
pub const DNG_ERR_OUT_OF_MEMORY: dng_status = -3;
pub const DNG_ERR_IO: dng_status = -4;
pub const DNG_ERR_FORMAT: dng_status = -5;
pub const DNG_ERR_STATE: dng_status = -6;
pub const DNG_ERR_NUMERIC: dng_status = -7;
pub const DNG_ERR_UNSUPPORTED: dng_status = -8;

/// The largest number of dimensions a tensor may have.
pub const DNG_MAX_DIMS: usize = 8;

pub type dng_act = c_int;
pub const DNG_ACT_RELU: dng_act = 0;
pub const DNG_ACT_LEAKY_RELU: dng_act = 1;
pub const DNG_ACT_SIGMOID: dng_act = 2;
pub const DNG_ACT_TANH: dng_act = 3;
pub const DNG_ACT_SOFTMAX: dng_act = 4;
pub const DNG_ACT_GELU: dng_act = 5;
pub const DNG_ACT_IDENTITY: dng_act = 6;

pub type dng_init = c_int;
pub const DNG_INIT_DEFAULT: dng_init = 0;
pub const DNG_INIT_XAVIER_UNIFORM: dng_init = 1;
pub const DNG_INIT_HE_NORMAL: dng_init = 2;
pub const DNG_INIT_NORMAL_002: dng_init = 3;

pub type dng_loss_kind = c_int;
pub const DNG_LOSS_MSE: dng_loss_kind = 0;
pub const DNG_LOSS_BCE_WITH_LOGITS: dng_loss_kind = 1;
pub const DNG_LOSS_CROSS_ENTROPY: dng_loss_kind = 2;
pub const DNG_LOSS_HINGE: dng_loss_kind = 3;

pub type dng_schedule = c_int;
pub const DNG_SCHED_CONSTANT: dng_schedule = 0;
pub const DNG_SCHED_STEP: dng_schedule = 1;
pub const DNG_SCHED_EXPONENTIAL: dng_schedule = 2;
pub const DNG_SCHED_COSINE: dng_schedule = 3;
pub const DNG_SCHED_WARMUP_LINEAR: dng_schedule = 4;

pub type dng_gan_loss = c_int;
pub const DNG_GAN_LOSS_BCE: dng_gan_loss = 0;
pub const DNG_GAN_LOSS_HINGE: dng_gan_loss = 1;
pub const DNG_GAN_LOSS_LSGAN: dng_gan_loss = 2;
pub const DNG_GAN_LOSS_WASSERSTEIN: dng_gan_loss = 3;

pub type dng_noise = c_int;
pub const DNG_NOISE_NORMAL: dng_noise = 0;
pub const DNG_NOISE_UNIFORM: dng_noise = 1;

/// `dng_fit_options`; fill with `dng_fit_options_default` first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dng_fit_options {
    pub size: usize,
    pub epochs: c_int,
    pub batch_size: i64,
    pub shuffle: c_int,
    pub seed: u64,
    pub patience: c_int,
    pub min_delta: c_float,
}

/// `dng_fit_progress`, what `dng_fit` reports after each epoch.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dng_fit_progress {
    pub size: usize,
    pub epoch: c_int,
    pub epochs: c_int,
    pub step: i64,
    pub train_loss: c_float,
    pub valid_loss: c_float,
    pub valid_accuracy: c_float,
    pub lr: c_float,
    pub seconds: c_double,
    pub best_epoch: c_int,
}

pub type dng_fit_callback =
    Option<unsafe extern "C" fn(progress: *const dng_fit_progress, user: *mut c_void) -> c_int>;

/// `dng_gan_stats`, what one `dng_gan_step` measured.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct dng_gan_stats {
    pub size: usize,
    pub d_loss: c_float,
    pub g_loss: c_float,
    pub d_real: c_float,
    pub d_fake: c_float,
    pub step: i64,
}

/// `dng_gan_progress`, what `dng_gan_train` reports.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct dng_gan_progress {
    pub size: usize,
    pub epoch: c_int,
    pub epochs: c_int,
    pub step: i64,
    pub steps: i64,
    pub stats: dng_gan_stats,
    pub seconds: c_double,
}

pub type dng_gan_callback =
    Option<unsafe extern "C" fn(progress: *const dng_gan_progress, user: *mut c_void) -> c_int>;

extern "C" {
    // Version and errors.
    pub fn dng_version() -> c_int;
    pub fn dng_version_string() -> *const c_char;
    pub fn dng_status_string(status: dng_status) -> *const c_char;
    pub fn dng_last_error() -> *const c_char;
    pub fn dng_clear_error();
    pub fn dng_set_num_threads(n: c_int) -> dng_status;
    pub fn dng_get_num_threads() -> c_int;

    // Random numbers.
    pub fn dng_rng_create(seed: u64) -> *mut dng_rng;
    pub fn dng_rng_destroy(rng: *mut dng_rng);
    pub fn dng_rng_uniform(
        rng: *mut dng_rng,
        out: *mut c_float,
        n: i64,
        lo: c_float,
        hi: c_float,
    ) -> dng_status;
    pub fn dng_rng_normal(
        rng: *mut dng_rng,
        out: *mut c_float,
        n: i64,
        mean: c_float,
        std: c_float,
    ) -> dng_status;
    pub fn dng_rng_get_state(rng: *const dng_rng, state: *mut u64) -> dng_status;
    pub fn dng_rng_set_state(rng: *mut dng_rng, state: *const u64) -> dng_status;

    // Tensors.
    pub fn dng_tensor_create(ndim: c_int, shape: *const i64) -> *mut dng_tensor;
    pub fn dng_tensor_from_data(
        ndim: c_int,
        shape: *const i64,
        data: *const c_float,
    ) -> *mut dng_tensor;
    pub fn dng_tensor_wrap(ndim: c_int, shape: *const i64, data: *mut c_float) -> *mut dng_tensor;
    pub fn dng_tensor_destroy(t: *mut dng_tensor);
    pub fn dng_tensor_ndim(t: *const dng_tensor) -> c_int;
    pub fn dng_tensor_dim(t: *const dng_tensor, axis: c_int) -> i64;
    pub fn dng_tensor_shape(t: *const dng_tensor, out: *mut i64) -> dng_status;
    pub fn dng_tensor_numel(t: *const dng_tensor) -> i64;
    pub fn dng_tensor_data(t: *mut dng_tensor) -> *mut c_float;
    pub fn dng_tensor_copy_out(t: *const dng_tensor, dst: *mut c_float, n: i64) -> dng_status;
    pub fn dng_tensor_copy_in(t: *mut dng_tensor, src: *const c_float, n: i64) -> dng_status;
    pub fn dng_tensor_fill(t: *mut dng_tensor, value: c_float) -> dng_status;
    pub fn dng_tensor_fill_uniform(
        t: *mut dng_tensor,
        rng: *mut dng_rng,
        lo: c_float,
        hi: c_float,
    ) -> dng_status;
    pub fn dng_tensor_fill_normal(
        t: *mut dng_tensor,
        rng: *mut dng_rng,
        mean: c_float,
        std: c_float,
    ) -> dng_status;
    pub fn dng_tensor_reshape(t: *mut dng_tensor, ndim: c_int, shape: *const i64) -> dng_status;
    pub fn dng_tensor_save_npy(t: *const dng_tensor, path: *const c_char) -> dng_status;
    pub fn dng_tensor_load_npy(path: *const c_char) -> *mut dng_tensor;

    // Layers.
    pub fn dng_dense(in_features: i64, out_features: i64) -> *mut dng_layer;
    pub fn dng_conv2d(
        in_ch: i64,
        out_ch: i64,
        kh: c_int,
        kw: c_int,
        stride: c_int,
        pad: c_int,
    ) -> *mut dng_layer;
    pub fn dng_conv2d_transpose(
        in_ch: i64,
        out_ch: i64,
        kh: c_int,
        kw: c_int,
        stride: c_int,
        pad: c_int,
    ) -> *mut dng_layer;
    pub fn dng_maxpool2d(k: c_int, stride: c_int) -> *mut dng_layer;
    pub fn dng_avgpool2d(k: c_int, stride: c_int) -> *mut dng_layer;
    pub fn dng_batchnorm(channels: i64) -> *mut dng_layer;
    pub fn dng_layernorm(features: i64) -> *mut dng_layer;
    pub fn dng_dropout(p: c_float) -> *mut dng_layer;
    pub fn dng_activation(kind: dng_act, param: c_float) -> *mut dng_layer;
    pub fn dng_reshape(ndim: c_int, shape: *const i64) -> *mut dng_layer;
    pub fn dng_flatten() -> *mut dng_layer;
    pub fn dng_spectral_norm(inner: *mut dng_layer) -> *mut dng_layer;
    pub fn dng_layer_destroy(layer: *mut dng_layer);

    // Networks.
    pub fn dng_net_create(ndim: c_int, sample_shape: *const i64) -> *mut dng_net;
    pub fn dng_net_destroy(net: *mut dng_net);
    pub fn dng_net_add(net: *mut dng_net, layer: *mut dng_layer) -> dng_status;
    pub fn dng_net_init(net: *mut dng_net, scheme: dng_init, rng: *mut dng_rng) -> dng_status;
    pub fn dng_net_set_seed(net: *mut dng_net, seed: u64) -> dng_status;
    pub fn dng_net_forward(
        net: *mut dng_net,
        x: *const dng_tensor,
        y: *mut *mut dng_tensor,
    ) -> dng_status;
    pub fn dng_net_backward(
        net: *mut dng_net,
        dy: *const dng_tensor,
        dx: *mut *mut dng_tensor,
    ) -> dng_status;
    pub fn dng_net_zero_grad(net: *mut dng_net) -> dng_status;
    pub fn dng_net_set_training(net: *mut dng_net, training: c_int) -> dng_status;
    pub fn dng_net_num_layers(net: *const dng_net) -> c_int;
    pub fn dng_net_output_shape(
        net: *const dng_net,
        ndim: *mut c_int,
        shape: *mut i64,
    ) -> dng_status;
    pub fn dng_net_num_params(net: *const dng_net) -> c_int;
    pub fn dng_net_param(net: *mut dng_net, i: c_int) -> *mut dng_tensor;
    pub fn dng_net_grad(net: *mut dng_net, i: c_int) -> *mut dng_tensor;
    pub fn dng_net_param_name(net: *const dng_net, i: c_int) -> *const c_char;
    pub fn dng_net_param_index(net: *const dng_net, name: *const c_char) -> c_int;
    pub fn dng_net_num_buffers(net: *const dng_net) -> c_int;
    pub fn dng_net_buffer(net: *mut dng_net, i: c_int) -> *mut dng_tensor;
    pub fn dng_net_buffer_name(net: *const dng_net, i: c_int) -> *const c_char;
    pub fn dng_net_param_count(net: *const dng_net) -> i64;
    pub fn dng_net_summary(net: *const dng_net, buf: *mut c_char, len: usize) -> dng_status;
    pub fn dng_net_save(net: *const dng_net, path: *const c_char) -> dng_status;
    pub fn dng_net_load(path: *const c_char) -> *mut dng_net;
    pub fn dng_net_save_safetensors(net: *const dng_net, path: *const c_char) -> dng_status;
    pub fn dng_net_load_safetensors(net: *mut dng_net, path: *const c_char) -> dng_status;
    pub fn dng_net_copy_weights(dst: *mut dng_net, src: *const dng_net) -> dng_status;

    // Losses.
    pub fn dng_loss(
        kind: dng_loss_kind,
        pred: *const dng_tensor,
        target: *const dng_tensor,
        value: *mut c_float,
        grad: *mut dng_tensor,
    ) -> dng_status;

    // Optimizers.
    pub fn dng_sgd(
        lr: c_float,
        momentum: c_float,
        nesterov: c_int,
        weight_decay: c_float,
    ) -> *mut dng_optim;
    pub fn dng_adam(
        lr: c_float,
        beta1: c_float,
        beta2: c_float,
        eps: c_float,
        weight_decay: c_float,
    ) -> *mut dng_optim;
    pub fn dng_adamw(
        lr: c_float,
        beta1: c_float,
        beta2: c_float,
        eps: c_float,
        weight_decay: c_float,
    ) -> *mut dng_optim;
    pub fn dng_rmsprop(
        lr: c_float,
        alpha: c_float,
        eps: c_float,
        momentum: c_float,
        weight_decay: c_float,
    ) -> *mut dng_optim;
    pub fn dng_optim_destroy(opt: *mut dng_optim);
    pub fn dng_optim_step(opt: *mut dng_optim, net: *mut dng_net) -> dng_status;
    pub fn dng_optim_set_lr(opt: *mut dng_optim, lr: c_float) -> dng_status;
    pub fn dng_optim_get_lr(opt: *const dng_optim) -> c_float;
    pub fn dng_optim_set_schedule(
        opt: *mut dng_optim,
        kind: dng_schedule,
        period: i64,
        gamma: c_float,
        min_lr: c_float,
    ) -> dng_status;
    pub fn dng_optim_schedule_step(opt: *mut dng_optim) -> dng_status;
    pub fn dng_optim_set_clip_norm(opt: *mut dng_optim, max_norm: c_float) -> dng_status;

    // Datasets.
    pub fn dng_dataset_from_tensors(x: *const dng_tensor, y: *const dng_tensor)
        -> *mut dng_dataset;
    pub fn dng_dataset_load_idx(
        images_path: *const c_char,
        labels_path: *const c_char,
    ) -> *mut dng_dataset;
    pub fn dng_dataset_open_idx(
        images_path: *const c_char,
        labels_path: *const c_char,
    ) -> *mut dng_dataset;
    pub fn dng_dataset_open_npy(x_path: *const c_char, y_path: *const c_char) -> *mut dng_dataset;
    pub fn dng_dataset_destroy(ds: *mut dng_dataset);
    pub fn dng_dataset_size(ds: *const dng_dataset) -> i64;
    pub fn dng_dataset_sample_shape(
        ds: *const dng_dataset,
        ndim: *mut c_int,
        shape: *mut i64,
    ) -> dng_status;
    pub fn dng_dataset_has_labels(ds: *const dng_dataset) -> c_int;
    pub fn dng_dataset_x(ds: *mut dng_dataset) -> *mut dng_tensor;
    pub fn dng_dataset_y(ds: *mut dng_dataset) -> *mut dng_tensor;
    pub fn dng_dataset_shuffle(ds: *mut dng_dataset, rng: *mut dng_rng) -> dng_status;
    pub fn dng_dataset_split(
        ds: *const dng_dataset,
        valid_fraction: c_double,
        rng: *mut dng_rng,
        train: *mut *mut dng_dataset,
        valid: *mut *mut dng_dataset,
    ) -> dng_status;
    pub fn dng_dataset_batch(
        ds: *const dng_dataset,
        start: i64,
        n: i64,
        x_out: *mut dng_tensor,
        y_out: *mut dng_tensor,
    ) -> dng_status;

    // Supervised training.
    pub fn dng_fit_options_default(opts: *mut dng_fit_options);
    pub fn dng_fit(
        net: *mut dng_net,
        opt: *mut dng_optim,
        loss: dng_loss_kind,
        train: *const dng_dataset,
        valid: *const dng_dataset,
        opts: *const dng_fit_options,
        callback: dng_fit_callback,
        user: *mut c_void,
    ) -> dng_status;
    pub fn dng_evaluate(
        net: *mut dng_net,
        loss_kind: dng_loss_kind,
        ds: *const dng_dataset,
        batch_size: i64,
        loss: *mut c_float,
        accuracy: *mut c_float,
    ) -> dng_status;

    // Adversarial training.
    pub fn dng_gan_create(
        generator: *mut dng_net,
        discriminator: *mut dng_net,
        g_opt: *mut dng_optim,
        d_opt: *mut dng_optim,
    ) -> *mut dng_gan;
    pub fn dng_gan_destroy(gan: *mut dng_gan);
    pub fn dng_gan_set_loss(gan: *mut dng_gan, loss: dng_gan_loss) -> dng_status;
    pub fn dng_gan_set_d_steps(gan: *mut dng_gan, k: c_int) -> dng_status;
    pub fn dng_gan_set_label_smoothing(gan: *mut dng_gan, real_label: c_float) -> dng_status;
    pub fn dng_gan_set_noise(gan: *mut dng_gan, noise: dng_noise) -> dng_status;
    pub fn dng_gan_set_ema(gan: *mut dng_gan, decay: c_float) -> dng_status;
    pub fn dng_gan_set_clip(gan: *mut dng_gan, clip: c_float) -> dng_status;
    pub fn dng_gan_set_seed(gan: *mut dng_gan, seed: u64) -> dng_status;
    pub fn dng_gan_set_report_interval(gan: *mut dng_gan, steps: i64) -> dng_status;
    pub fn dng_gan_step(
        gan: *mut dng_gan,
        real: *const dng_tensor,
        rng: *mut dng_rng,
        out: *mut dng_gan_stats,
    ) -> dng_status;
    pub fn dng_gan_train(
        gan: *mut dng_gan,
        ds: *const dng_dataset,
        epochs: c_int,
        batch_size: i64,
        callback: dng_gan_callback,
        user: *mut c_void,
    ) -> dng_status;
    pub fn dng_gan_sample(
        gan: *mut dng_gan,
        n: i64,
        rng: *mut dng_rng,
        out: *mut dng_tensor,
    ) -> dng_status;
    pub fn dng_gan_generate(
        gan: *mut dng_gan,
        z: *const dng_tensor,
        out: *mut dng_tensor,
    ) -> dng_status;
    pub fn dng_gan_steps(gan: *const dng_gan) -> i64;
    pub fn dng_gan_save_checkpoint(gan: *const dng_gan, path: *const c_char) -> dng_status;
    pub fn dng_gan_load_checkpoint(gan: *mut dng_gan, path: *const c_char) -> dng_status;
    pub fn dng_write_image_grid(
        images: *const dng_tensor,
        cols: c_int,
        path: *const c_char,
    ) -> dng_status;
    pub fn dng_frechet_distance(
        a: *const dng_tensor,
        b: *const dng_tensor,
        out: *mut c_double,
    ) -> dng_status;
}
