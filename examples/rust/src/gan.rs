//! Adversarial training.

use std::mem::ManuallyDrop;
use std::ops::ControlFlow;
use std::os::raw::{c_int, c_void};
use std::path::Path;
use std::ptr::{self, NonNull};

use crate::callback::{invoke, Callback};
use crate::rng::opt_rng;
use crate::{c_path, check, non_null, sys, Dataset, Net, Optim, Result, Rng, Tensor, TensorRef};

/// Adversarial losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GanLoss {
    /// Non-saturating binary cross-entropy (the default).
    Bce,
    /// Hinge: D minimises relu(1 - D(x)) + relu(1 + D(G(z))).
    Hinge,
    /// Least squares.
    Lsgan,
    /// Wasserstein with weight clipping.
    Wasserstein,
}

/// Distributions of the latent noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Noise {
    /// N(0, 1) (the default).
    Normal,
    /// U(-1, 1).
    Uniform,
}

/// What one [`Gan::step`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GanStats {
    /// Discriminator loss (real and fake terms summed).
    pub d_loss: f32,
    /// Generator loss of the latest generator update.
    pub g_loss: f32,
    /// Mean D(x) on the real batch (a probability for BCE).
    pub d_real: f32,
    /// Mean D(G(z)) before the discriminator update.
    pub d_fake: f32,
    /// Discriminator updates so far.
    pub step: i64,
}

impl GanStats {
    fn from_raw(s: &sys::dng_gan_stats) -> GanStats {
        GanStats {
            d_loss: s.d_loss,
            g_loss: s.g_loss,
            d_real: s.d_real,
            d_fake: s.d_fake,
            step: s.step,
        }
    }
}

/// What [`Gan::train`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GanProgress {
    /// 1-based current epoch.
    pub epoch: i32,
    /// Epochs asked for.
    pub epochs: i32,
    /// Discriminator updates so far.
    pub step: i64,
    /// Updates the whole run will make.
    pub steps: i64,
    /// Means over the steps since the last report.
    pub stats: GanStats,
    /// Wall-clock seconds since training started.
    pub seconds: f64,
}

unsafe extern "C" fn gan_trampoline(p: *const sys::dng_gan_progress, user: *mut c_void) -> c_int {
    invoke(user, || {
        let p = &*p;
        GanProgress {
            epoch: p.epoch,
            epochs: p.epochs,
            step: p.step,
            steps: p.steps,
            stats: GanStats::from_raw(&p.stats),
            seconds: p.seconds,
        }
    })
}

/// A GAN trainer. It owns its generator, discriminator and their
/// optimizers (the C trainer borrows them, so owning them here is what
/// keeps them alive and untouched for as long as it runs); get them back
/// with [`Gan::into_parts`].
pub struct Gan {
    ptr: NonNull<sys::dng_gan>,
    g: Net,
    d: Net,
    g_opt: Optim,
    d_opt: Optim,
}

// One handle is used by one thread at a time; moving it is fine.
unsafe impl Send for Gan {}

impl Gan {
    /// A trainer over `generator` (sample shape `[latent]`) and
    /// `discriminator` (sample shape = the generator's output, one output
    /// per sample). On failure the four are dropped.
    pub fn new(generator: Net, discriminator: Net, g_opt: Optim, d_opt: Optim) -> Result<Gan> {
        let (mut g, mut d, mut go, mut dopt) = (generator, discriminator, g_opt, d_opt);
        let p = unsafe {
            sys::dng_gan_create(
                g.as_mut_ptr(),
                d.as_mut_ptr(),
                go.as_mut_ptr(),
                dopt.as_mut_ptr(),
            )
        };
        Ok(Gan {
            ptr: non_null(p)?,
            g,
            d,
            g_opt: go,
            d_opt: dopt,
        })
    }

    /// The generator (read-only while the trainer owns it).
    pub fn generator(&self) -> &Net {
        &self.g
    }

    /// The discriminator (read-only while the trainer owns it).
    pub fn discriminator(&self) -> &Net {
        &self.d
    }

    /// Free the trainer and hand back (generator, discriminator, g_opt,
    /// d_opt).
    pub fn into_parts(self) -> (Net, Net, Optim, Optim) {
        let me = ManuallyDrop::new(self);
        unsafe {
            sys::dng_gan_destroy(me.ptr.as_ptr());
            // The fields are moved out exactly once; `me` is never dropped.
            (
                ptr::read(&me.g),
                ptr::read(&me.d),
                ptr::read(&me.g_opt),
                ptr::read(&me.d_opt),
            )
        }
    }

    fn raw(&mut self) -> *mut sys::dng_gan {
        self.ptr.as_ptr()
    }

    /// Choose the loss.
    pub fn set_loss(&mut self, loss: GanLoss) -> Result<()> {
        let l = match loss {
            GanLoss::Bce => sys::DNG_GAN_LOSS_BCE,
            GanLoss::Hinge => sys::DNG_GAN_LOSS_HINGE,
            GanLoss::Lsgan => sys::DNG_GAN_LOSS_LSGAN,
            GanLoss::Wasserstein => sys::DNG_GAN_LOSS_WASSERSTEIN,
        };
        check(unsafe { sys::dng_gan_set_loss(self.raw(), l) })
    }

    /// Discriminator updates per generator update (1 to 100).
    pub fn set_d_steps(&mut self, k: i32) -> Result<()> {
        check(unsafe { sys::dng_gan_set_d_steps(self.raw(), k) })
    }

    /// One-sided label smoothing: the BCE target of real samples, (0, 1].
    pub fn set_label_smoothing(&mut self, real_label: f32) -> Result<()> {
        check(unsafe { sys::dng_gan_set_label_smoothing(self.raw(), real_label) })
    }

    /// The latent distribution.
    pub fn set_noise(&mut self, noise: Noise) -> Result<()> {
        let n = match noise {
            Noise::Normal => sys::DNG_NOISE_NORMAL,
            Noise::Uniform => sys::DNG_NOISE_UNIFORM,
        };
        check(unsafe { sys::dng_gan_set_noise(self.raw(), n) })
    }

    /// EMA of the generator's weights with `decay` in [0, 1); 0 is off.
    pub fn set_ema(&mut self, decay: f32) -> Result<()> {
        check(unsafe { sys::dng_gan_set_ema(self.raw(), decay) })
    }

    /// Weight clipping bound for the Wasserstein loss.
    pub fn set_clip(&mut self, clip: f32) -> Result<()> {
        check(unsafe { sys::dng_gan_set_clip(self.raw(), clip) })
    }

    /// Seed the trainer's own generator.
    pub fn set_seed(&mut self, seed: u64) -> Result<()> {
        check(unsafe { sys::dng_gan_set_seed(self.raw(), seed) })
    }

    /// Steps between two [`Gan::train`] reports.
    pub fn set_report_interval(&mut self, steps: i64) -> Result<()> {
        check(unsafe { sys::dng_gan_set_report_interval(self.raw(), steps) })
    }

    /// One discriminator update on `real` (and, every k-th call, one
    /// generator update). `rng` None uses the trainer's own generator.
    pub fn step(&mut self, real: &TensorRef, rng: Option<&mut Rng>) -> Result<GanStats> {
        let mut st = sys::dng_gan_stats {
            size: std::mem::size_of::<sys::dng_gan_stats>(),
            ..Default::default()
        };
        check(unsafe { sys::dng_gan_step(self.raw(), real.as_ptr(), opt_rng(rng), &mut st) })?;
        Ok(GanStats::from_raw(&st))
    }

    /// Train for `epochs` over `ds` in batches of `batch_size`, calling
    /// `callback` every report interval; it returns
    /// `ControlFlow::Break(())` to stop.
    pub fn train<F>(
        &mut self,
        ds: &Dataset,
        epochs: i32,
        batch_size: i64,
        mut callback: F,
    ) -> Result<()>
    where
        F: FnMut(&GanProgress) -> ControlFlow<()>,
    {
        let mut cb = Callback::new(&mut callback);
        let s = unsafe {
            sys::dng_gan_train(
                self.raw(),
                ds.as_ptr(),
                epochs,
                batch_size,
                Some(gan_trampoline),
                cb.user(),
            )
        };
        let r = check(s);
        cb.finish();
        r
    }

    fn sample_shape(&self, n: i64) -> Result<Vec<i64>> {
        let mut shape = vec![n];
        shape.extend(self.g.output_shape()?);
        Ok(shape)
    }

    /// `n` new samples [n, generator output shape], from the EMA weights
    /// when enabled.
    pub fn sample(&mut self, n: i64, rng: Option<&mut Rng>) -> Result<Tensor> {
        let mut out = Tensor::zeros(&self.sample_shape(n)?)?;
        self.sample_into(n, rng, &mut out)?;
        Ok(out)
    }

    /// `n` samples into `out`.
    pub fn sample_into(
        &mut self,
        n: i64,
        rng: Option<&mut Rng>,
        out: &mut TensorRef,
    ) -> Result<()> {
        check(unsafe { sys::dng_gan_sample(self.raw(), n, opt_rng(rng), out.as_mut_ptr()) })
    }

    /// Samples from given latent vectors `z` [n, latent].
    pub fn generate(&mut self, z: &TensorRef) -> Result<Tensor> {
        let n = z.dim(0).unwrap_or(0);
        let mut out = Tensor::zeros(&self.sample_shape(n)?)?;
        self.generate_into(z, &mut out)?;
        Ok(out)
    }

    /// Samples from `z` into `out`.
    pub fn generate_into(&mut self, z: &TensorRef, out: &mut TensorRef) -> Result<()> {
        check(unsafe { sys::dng_gan_generate(self.raw(), z.as_ptr(), out.as_mut_ptr()) })
    }

    /// Discriminator updates made so far.
    pub fn steps(&self) -> i64 {
        unsafe { sys::dng_gan_steps(self.ptr.as_ptr()) }
    }

    /// Save networks, optimizer state, EMA, step count and RNG state.
    pub fn save_checkpoint<P: AsRef<Path>>(&self, path: P) -> Result<()> {
        let p = c_path(path.as_ref(), "Gan::save_checkpoint")?;
        check(unsafe { sys::dng_gan_save_checkpoint(self.ptr.as_ptr(), p.as_ptr()) })
    }

    /// Restore a checkpoint; training then resumes bit-identically.
    pub fn load_checkpoint<P: AsRef<Path>>(&mut self, path: P) -> Result<()> {
        let p = c_path(path.as_ref(), "Gan::load_checkpoint")?;
        check(unsafe { sys::dng_gan_load_checkpoint(self.raw(), p.as_ptr()) })
    }
}

impl std::fmt::Debug for Gan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gan")
            .field("steps", &self.steps())
            .field("generator", &self.g)
            .field("discriminator", &self.d)
            .finish()
    }
}

impl Drop for Gan {
    fn drop(&mut self) {
        // The trainer goes first; the fields (networks, optimizers) are
        // dropped after this body, so they outlive it as C requires.
        unsafe { sys::dng_gan_destroy(self.ptr.as_ptr()) }
    }
}
