//! Optimizers and learning-rate schedules.

use std::os::raw::c_int;
use std::ptr::NonNull;

use crate::{check, non_null, sys, Net, Result};

/// Learning-rate schedules, advanced by [`Optim::schedule_step`] (which
/// [`crate::fit`] calls once per epoch); `t` counts those advances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// lr stays at the base rate.
    Constant,
    /// lr = base * gamma^floor(t / period).
    Step { period: i64, gamma: f32 },
    /// lr = base * gamma^t.
    Exponential { gamma: f32 },
    /// lr = min + (base - min) (1 + cos(pi t / period)) / 2.
    Cosine { period: i64, min_lr: f32 },
    /// lr = base * min(1, (t + 1) / (period + 1)).
    WarmupLinear { period: i64 },
}

/// An optimizer. Its state belongs to the first network it steps.
pub struct Optim {
    ptr: NonNull<sys::dng_optim>,
}

// One handle is used by one thread at a time; moving it is fine.
unsafe impl Send for Optim {}

impl Optim {
    fn wrap(p: *mut sys::dng_optim) -> Result<Optim> {
        Ok(Optim { ptr: non_null(p)? })
    }

    /// SGD with momentum, Nesterov momentum and L2 weight decay
    /// (torch.optim.SGD).
    pub fn sgd(lr: f32, momentum: f32, nesterov: bool, weight_decay: f32) -> Result<Optim> {
        Optim::wrap(unsafe { sys::dng_sgd(lr, momentum, nesterov as c_int, weight_decay) })
    }

    /// Adam (torch.optim.Adam).
    pub fn adam(lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Result<Optim> {
        Optim::wrap(unsafe { sys::dng_adam(lr, beta1, beta2, eps, weight_decay) })
    }

    /// AdamW (torch.optim.AdamW), decoupled weight decay.
    pub fn adamw(lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32) -> Result<Optim> {
        Optim::wrap(unsafe { sys::dng_adamw(lr, beta1, beta2, eps, weight_decay) })
    }

    /// RMSProp (torch.optim.RMSprop, not centred).
    pub fn rmsprop(
        lr: f32,
        alpha: f32,
        eps: f32,
        momentum: f32,
        weight_decay: f32,
    ) -> Result<Optim> {
        Optim::wrap(unsafe { sys::dng_rmsprop(lr, alpha, eps, momentum, weight_decay) })
    }

    /// Apply one update from `net`'s accumulated gradients.
    pub fn step(&mut self, net: &mut Net) -> Result<()> {
        check(unsafe { sys::dng_optim_step(self.as_mut_ptr(), net.as_mut_ptr()) })
    }

    /// Set the base learning rate (> 0).
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        check(unsafe { sys::dng_optim_set_lr(self.as_mut_ptr(), lr) })
    }

    /// The learning rate the next step will use.
    pub fn lr(&self) -> f32 {
        unsafe { sys::dng_optim_get_lr(self.ptr.as_ptr()) }
    }

    /// Choose a schedule (its position starts at 0).
    pub fn set_schedule(&mut self, schedule: Schedule) -> Result<()> {
        // Arguments a kind ignores get neutral values.
        let (kind, period, gamma, min_lr) = match schedule {
            Schedule::Constant => (sys::DNG_SCHED_CONSTANT, 1, 1.0, 0.0),
            Schedule::Step { period, gamma } => (sys::DNG_SCHED_STEP, period, gamma, 0.0),
            Schedule::Exponential { gamma } => (sys::DNG_SCHED_EXPONENTIAL, 1, gamma, 0.0),
            Schedule::Cosine { period, min_lr } => (sys::DNG_SCHED_COSINE, period, 1.0, min_lr),
            Schedule::WarmupLinear { period } => (sys::DNG_SCHED_WARMUP_LINEAR, period, 1.0, 0.0),
        };
        check(unsafe {
            sys::dng_optim_set_schedule(self.as_mut_ptr(), kind, period, gamma, min_lr)
        })
    }

    /// Advance the schedule by one unit.
    pub fn schedule_step(&mut self) -> Result<()> {
        check(unsafe { sys::dng_optim_schedule_step(self.as_mut_ptr()) })
    }

    /// Clip the global gradient norm to `max_norm` before each step; 0 is
    /// off.
    pub fn set_clip_norm(&mut self, max_norm: f32) -> Result<()> {
        check(unsafe { sys::dng_optim_set_clip_norm(self.as_mut_ptr(), max_norm) })
    }

    /// The raw handle, for calls through [`crate::sys`].
    pub fn as_mut_ptr(&mut self) -> *mut sys::dng_optim {
        self.ptr.as_ptr()
    }
}

impl std::fmt::Debug for Optim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optim").field("lr", &self.lr()).finish()
    }
}

impl Drop for Optim {
    fn drop(&mut self) {
        unsafe { sys::dng_optim_destroy(self.ptr.as_ptr()) }
    }
}
