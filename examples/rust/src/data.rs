//! Datasets and supervised training ([`fit`], [`evaluate`]).

use std::ops::ControlFlow;
use std::os::raw::{c_int, c_void};
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::callback::{invoke, Callback};
use crate::rng::opt_rng;
use crate::{c_path, check, non_null, sys, LossKind, Net, Optim, Result, Rng, TensorRef};

/// Samples and optional labels, in memory or memory-mapped.
pub struct Dataset {
    ptr: NonNull<sys::dng_dataset>,
}

// One handle is used by one thread at a time; moving it is fine.
unsafe impl Send for Dataset {}

fn opt_path(p: Option<&Path>, func: &str) -> Result<Option<std::ffi::CString>> {
    p.map(|p| c_path(p, func)).transpose()
}

fn opt_ptr(c: &Option<std::ffi::CString>) -> *const std::os::raw::c_char {
    c.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

impl Dataset {
    fn wrap(p: *mut sys::dng_dataset) -> Result<Dataset> {
        Ok(Dataset { ptr: non_null(p)? })
    }

    /// An in-memory dataset holding copies of `x` [N, ...] and `y` [N, ...]
    /// (None for unlabelled data, as a GAN's).
    pub fn from_tensors(x: &TensorRef, y: Option<&TensorRef>) -> Result<Dataset> {
        let yp = y.map_or(ptr::null(), |y| y.as_ptr());
        Dataset::wrap(unsafe { sys::dng_dataset_from_tensors(x.as_ptr(), yp) })
    }

    /// Load IDX files (raw or gzip) into memory, images scaled to [0, 1].
    pub fn load_idx<P: AsRef<Path>>(images: P, labels: Option<&Path>) -> Result<Dataset> {
        let i = c_path(images.as_ref(), "Dataset::load_idx")?;
        let l = opt_path(labels, "Dataset::load_idx")?;
        Dataset::wrap(unsafe { sys::dng_dataset_load_idx(i.as_ptr(), opt_ptr(&l)) })
    }

    /// Memory-map uncompressed IDX files, read batch by batch.
    pub fn open_idx<P: AsRef<Path>>(images: P, labels: Option<&Path>) -> Result<Dataset> {
        let i = c_path(images.as_ref(), "Dataset::open_idx")?;
        let l = opt_path(labels, "Dataset::open_idx")?;
        Dataset::wrap(unsafe { sys::dng_dataset_open_idx(i.as_ptr(), opt_ptr(&l)) })
    }

    /// Memory-map float32 .npy files x [N, ...] and optionally y [N, ...].
    pub fn open_npy<P: AsRef<Path>>(x: P, y: Option<&Path>) -> Result<Dataset> {
        let xp = c_path(x.as_ref(), "Dataset::open_npy")?;
        let yp = opt_path(y, "Dataset::open_npy")?;
        Dataset::wrap(unsafe { sys::dng_dataset_open_npy(xp.as_ptr(), opt_ptr(&yp)) })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        unsafe { sys::dng_dataset_size(self.as_ptr()) }.max(0) as usize
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The per-sample shape of x.
    pub fn sample_shape(&self) -> Result<Vec<i64>> {
        let mut nd: c_int = 0;
        let mut s = [0i64; sys::DNG_MAX_DIMS];
        check(unsafe { sys::dng_dataset_sample_shape(self.as_ptr(), &mut nd, s.as_mut_ptr()) })?;
        Ok(s[..nd.max(0) as usize].to_vec())
    }

    /// Whether the samples have labels.
    pub fn has_labels(&self) -> bool {
        unsafe { sys::dng_dataset_has_labels(self.as_ptr()) == 1 }
    }

    /// All samples of an in-memory dataset as one tensor [N, ...]; None
    /// for a memory-mapped one.
    pub fn x(&self) -> Option<&TensorRef> {
        let p = unsafe { sys::dng_dataset_x(self.ptr.as_ptr()) };
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr(p) })
    }

    /// The samples, writable (to rescale them in place, for instance).
    pub fn x_mut(&mut self) -> Option<&mut TensorRef> {
        let p = unsafe { sys::dng_dataset_x(self.ptr.as_ptr()) };
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr_mut(p) })
    }

    /// The labels of an in-memory dataset; None when unlabelled.
    pub fn y(&self) -> Option<&TensorRef> {
        let p = unsafe { sys::dng_dataset_y(self.ptr.as_ptr()) };
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr(p) })
    }

    /// The labels, writable.
    pub fn y_mut(&mut self) -> Option<&mut TensorRef> {
        let p = unsafe { sys::dng_dataset_y(self.ptr.as_ptr()) };
        (!p.is_null()).then(|| unsafe { TensorRef::from_ptr_mut(p) })
    }

    /// Shuffle samples and labels in place.
    pub fn shuffle(&mut self, rng: &mut Rng) -> Result<()> {
        check(unsafe { sys::dng_dataset_shuffle(self.ptr.as_ptr(), rng.as_mut_ptr()) })
    }

    /// Split into (train, valid): the last round(N * valid_fraction)
    /// samples, after shuffling with `rng` when given, go to valid.
    pub fn split(&self, valid_fraction: f64, rng: Option<&mut Rng>) -> Result<(Dataset, Dataset)> {
        let mut t: *mut sys::dng_dataset = ptr::null_mut();
        let mut v: *mut sys::dng_dataset = ptr::null_mut();
        check(unsafe {
            sys::dng_dataset_split(self.as_ptr(), valid_fraction, opt_rng(rng), &mut t, &mut v)
        })?;
        Ok((Dataset::wrap(t)?, Dataset::wrap(v)?))
    }

    /// Copy samples [start, start + n) into `x_out` and their labels into
    /// `y_out` when given.
    pub fn batch(
        &self,
        start: i64,
        n: i64,
        x_out: &mut TensorRef,
        y_out: Option<&mut TensorRef>,
    ) -> Result<()> {
        let yp = y_out.map_or(ptr::null_mut(), |y| y.as_mut_ptr());
        check(unsafe { sys::dng_dataset_batch(self.as_ptr(), start, n, x_out.as_mut_ptr(), yp) })
    }

    /// The raw handle, for calls through [`crate::sys`].
    pub fn as_ptr(&self) -> *const sys::dng_dataset {
        self.ptr.as_ptr()
    }
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("sample_shape", &self.sample_shape().unwrap_or_default())
            .field("has_labels", &self.has_labels())
            .finish()
    }
}

impl Drop for Dataset {
    fn drop(&mut self) {
        unsafe { sys::dng_dataset_destroy(self.ptr.as_ptr()) }
    }
}

/// Options for [`fit`]; `Default` gives the library's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Passes over the training set.
    pub epochs: i32,
    /// Samples per step.
    pub batch_size: i64,
    /// Reshuffle every epoch.
    pub shuffle: bool,
    /// Seed of the shuffling and dropout.
    pub seed: u64,
    /// Early stopping after this many epochs without a better validation
    /// loss (0 = off); the best weights are restored.
    pub patience: i32,
    /// Improvement that counts.
    pub min_delta: f32,
}

fn default_raw() -> sys::dng_fit_options {
    let mut o = std::mem::MaybeUninit::<sys::dng_fit_options>::zeroed();
    // dng_fit_options_default fills every field, size included.
    unsafe {
        sys::dng_fit_options_default(o.as_mut_ptr());
        o.assume_init()
    }
}

impl Default for FitOptions {
    fn default() -> Self {
        let o = default_raw();
        FitOptions {
            epochs: o.epochs,
            batch_size: o.batch_size,
            shuffle: o.shuffle != 0,
            seed: o.seed,
            patience: o.patience,
            min_delta: o.min_delta,
        }
    }
}

impl FitOptions {
    fn raw(&self) -> sys::dng_fit_options {
        let mut o = default_raw();
        o.epochs = self.epochs;
        o.batch_size = self.batch_size;
        o.shuffle = self.shuffle as c_int;
        o.seed = self.seed;
        o.patience = self.patience;
        o.min_delta = self.min_delta;
        o
    }
}

/// What [`fit`] reports after each epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitProgress {
    /// 1-based epoch just finished.
    pub epoch: i32,
    /// Epochs asked for.
    pub epochs: i32,
    /// Optimizer steps so far.
    pub step: i64,
    /// Mean training loss of the epoch.
    pub train_loss: f32,
    /// Validation loss; None without validation data.
    pub valid_loss: Option<f32>,
    /// Validation accuracy; None when undefined.
    pub valid_accuracy: Option<f32>,
    /// Learning rate used in the epoch.
    pub lr: f32,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
    /// Epoch with the best validation loss so far.
    pub best_epoch: i32,
}

fn not_nan(v: f32) -> Option<f32> {
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

impl FitProgress {
    fn from_raw(p: &sys::dng_fit_progress) -> FitProgress {
        FitProgress {
            epoch: p.epoch,
            epochs: p.epochs,
            step: p.step,
            train_loss: p.train_loss,
            valid_loss: not_nan(p.valid_loss),
            valid_accuracy: not_nan(p.valid_accuracy),
            lr: p.lr,
            seconds: p.seconds,
            best_epoch: p.best_epoch,
        }
    }
}

unsafe extern "C" fn fit_trampoline(p: *const sys::dng_fit_progress, user: *mut c_void) -> c_int {
    invoke(user, || FitProgress::from_raw(&*p))
}

/// Train `net` with `opt` on `train` (dng_fit): per epoch, shuffle, run
/// batches of forward, loss, backward and step, evaluate on `valid`, then
/// call `callback`, which returns `ControlFlow::Break(())` to stop early.
/// A panic in the callback stops training and resumes after it.
pub fn fit<F>(
    net: &mut Net,
    opt: &mut Optim,
    loss: LossKind,
    train: &Dataset,
    valid: Option<&Dataset>,
    opts: &FitOptions,
    mut callback: F,
) -> Result<()>
where
    F: FnMut(&FitProgress) -> ControlFlow<()>,
{
    let raw = opts.raw();
    let mut cb = Callback::new(&mut callback);
    let s = unsafe {
        sys::dng_fit(
            net.as_mut_ptr(),
            opt.as_mut_ptr(),
            loss.raw(),
            train.as_ptr(),
            valid.map_or(ptr::null(), |v| v.as_ptr()),
            &raw,
            Some(fit_trampoline),
            cb.user(),
        )
    };
    // The message is read before anything else can call the library.
    let r = check(s);
    cb.finish();
    r
}

/// Loss and accuracy from [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss over the dataset.
    pub loss: f32,
    /// Accuracy in [0, 1]; None when the labels are not class indices.
    pub accuracy: Option<f32>,
}

/// Mean loss and accuracy of `net` (in evaluation mode) over `ds`.
pub fn evaluate(
    net: &mut Net,
    loss: LossKind,
    ds: &Dataset,
    batch_size: i64,
) -> Result<Evaluation> {
    let mut l = 0.0f32;
    let mut a = 0.0f32;
    check(unsafe {
        sys::dng_evaluate(
            net.as_mut_ptr(),
            loss.raw(),
            ds.as_ptr(),
            batch_size,
            &mut l,
            &mut a,
        )
    })?;
    Ok(Evaluation {
        loss: l,
        accuracy: not_nan(a),
    })
}
