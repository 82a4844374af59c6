//! Adversarial training on toy 2-D data.

mod common;

use common::{setup, TempDir};
use dnngen::{ControlFlow, Dataset, Gan, GanLoss, Layer, Net, Optim, Rng, Status, Tensor};

const LATENT: i64 = 4;
const TARGET: [f32; 2] = [2.0, -1.0];

fn toy_gan(seed: u64) -> Gan {
    let mut g = Net::new(&[LATENT]).unwrap();
    g.add(Layer::dense(LATENT, 16).unwrap())
        .unwrap()
        .add(Layer::leaky_relu(0.2).unwrap())
        .unwrap()
        .add(Layer::dense(16, 2).unwrap())
        .unwrap();
    let mut d = Net::new(&[2]).unwrap();
    d.add(Layer::dense(2, 16).unwrap())
        .unwrap()
        .add(Layer::leaky_relu(0.2).unwrap())
        .unwrap()
        .add(Layer::dense(16, 1).unwrap())
        .unwrap();
    let g_opt = Optim::adam(2e-3, 0.5, 0.999, 1e-8, 0.0).unwrap();
    let d_opt = Optim::adam(2e-3, 0.5, 0.999, 1e-8, 0.0).unwrap();
    let mut gan = Gan::new(g, d, g_opt, d_opt).unwrap();
    gan.set_seed(seed).unwrap();
    gan
}

/// A batch of real points from N(TARGET, 0.1^2).
fn real_batch(rng: &mut Rng, n: i64) -> Tensor {
    let mut t = Tensor::zeros(&[n, 2]).unwrap();
    t.fill_normal(rng, 0.0, 0.1).unwrap();
    for (i, v) in t.as_mut_slice().iter_mut().enumerate() {
        *v += TARGET[i % 2];
    }
    t
}

fn distance_of_mean(samples: &Tensor) -> f32 {
    let s = samples.as_slice();
    let n = (s.len() / 2) as f32;
    let mx: f32 = s.iter().step_by(2).sum::<f32>() / n;
    let my: f32 = s.iter().skip(1).step_by(2).sum::<f32>() / n;
    ((mx - TARGET[0]).powi(2) + (my - TARGET[1]).powi(2)).sqrt()
}

#[test]
fn gan_steps_move_samples_towards_the_data() {
    setup();
    let mut gan = toy_gan(1);
    let mut data_rng = Rng::new(100).unwrap();
    let before = distance_of_mean(&gan.sample(512, Some(&mut Rng::new(5).unwrap())).unwrap());
    let mut last = Default::default();
    for i in 0..400 {
        let real = real_batch(&mut data_rng, 64);
        last = gan.step(&real, None).unwrap();
        assert_eq!(last.step, i + 1);
        assert!(last.d_loss.is_finite() && last.g_loss.is_finite());
        assert!(
            last.d_real > 0.0 && last.d_real < 1.0,
            "BCE gives probabilities"
        );
    }
    assert_eq!(gan.steps(), 400);
    let samples = gan.sample(512, Some(&mut Rng::new(5).unwrap())).unwrap();
    assert_eq!(samples.shape(), vec![512, 2]);
    let after = distance_of_mean(&samples);
    eprintln!(
        "distance of the sample mean: {} -> {} ({:?})",
        before, after, last
    );
    assert!(
        after < 0.5 && after < before / 3.0,
        "mean of G(z) from {} to {} away from the data ({:?})",
        before,
        after,
        last
    );
}

#[test]
fn same_seed_same_training_and_checkpoints_resume_exactly() {
    setup();
    let dir = TempDir::new("gan");
    let batches: Vec<Tensor> = {
        let mut r = Rng::new(7).unwrap();
        (0..20).map(|_| real_batch(&mut r, 32)).collect()
    };
    let z = {
        let mut z = Tensor::zeros(&[16, LATENT]).unwrap();
        z.fill_normal(&mut Rng::new(3).unwrap(), 0.0, 1.0).unwrap();
        z
    };

    // Straight: 20 steps.
    let mut a = toy_gan(9);
    a.set_ema(0.9).unwrap();
    let stats_a: Vec<_> = batches.iter().map(|b| a.step(b, None).unwrap()).collect();
    let out_a = a.generate(&z).unwrap();

    // Same seed, 10 steps, checkpoint; a fresh trainer loads it and runs
    // the last 10.
    let ck = dir.path("toy.ckpt");
    let mut b = toy_gan(9);
    b.set_ema(0.9).unwrap();
    for (i, batch) in batches[..10].iter().enumerate() {
        assert_eq!(
            b.step(batch, None).unwrap(),
            stats_a[i],
            "same seed, same numbers"
        );
    }
    b.save_checkpoint(&ck).unwrap();
    drop(b);
    let mut c = toy_gan(12345); // the checkpoint restores the RNG state
    c.set_ema(0.9).unwrap();
    c.load_checkpoint(&ck).unwrap();
    assert_eq!(c.steps(), 10);
    for (i, batch) in batches[10..].iter().enumerate() {
        assert_eq!(
            c.step(batch, None).unwrap(),
            stats_a[10 + i],
            "step {}",
            10 + i
        );
    }
    assert_eq!(c.generate(&z).unwrap().as_slice(), out_a.as_slice());

    let e = c.load_checkpoint(dir.path("missing.ckpt")).unwrap_err();
    assert_eq!(e.status(), Some(Status::Io), "{}", e);
    assert_eq!(c.steps(), 20, "a failed load leaves the trainer unchanged");
}

#[test]
fn train_with_callback_grid_and_parts() {
    setup();
    let dir = TempDir::new("gantrain");
    let mut gan = toy_gan(2);
    gan.set_loss(GanLoss::Hinge).unwrap();
    gan.set_report_interval(5).unwrap();
    let x = real_batch(&mut Rng::new(1).unwrap(), 64);
    let ds = Dataset::from_tensors(&x, None).unwrap();
    assert!(!ds.has_labels());
    let mut reports = Vec::new();
    gan.train(&ds, 3, 16, |p| {
        reports.push(*p);
        ControlFlow::Continue(())
    })
    .unwrap();
    // 3 epochs of 64 / 16 = 4 steps, reported every 5 and at the end.
    assert_eq!(gan.steps(), 12);
    let steps: Vec<i64> = reports.iter().map(|p| p.step).collect();
    assert_eq!(steps.last(), Some(&12), "{:?}", steps);
    assert!(steps.contains(&5) && steps.contains(&10), "{:?}", steps);
    assert!(reports.iter().all(|p| p.steps == 12 && p.epochs == 3));

    let mut stopped = 0;
    gan.train(&ds, 3, 16, |_| {
        stopped += 1;
        ControlFlow::Break(())
    })
    .unwrap();
    assert_eq!(stopped, 1);
    assert_eq!(gan.steps(), 17, "stopped at the first report");

    // Sampling into a wrong shape is refused.
    let mut wrong = Tensor::zeros(&[4, 3]).unwrap();
    let e = gan.sample_into(4, None, &mut wrong).unwrap_err();
    assert_eq!(e.status(), Some(Status::Shape), "{}", e);

    let (g, d, _go, _do) = gan.into_parts();
    assert_eq!(g.output_shape().unwrap(), vec![2]);
    assert_eq!(d.output_shape().unwrap(), vec![1]);

    // A 2 x 2 grid of 1-channel 3 x 3 images: black, white, black, white.
    let mut img = Tensor::zeros(&[4, 1, 3, 3]).unwrap();
    for (i, v) in img.as_mut_slice().iter_mut().enumerate() {
        *v = if (i / 9) % 2 == 0 { -1.0 } else { 1.0 };
    }
    let p = dir.path("grid.pgm");
    dnngen::write_image_grid(&img, 2, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let head = b"P5\n8 8\n255\n"; // 2 tiles of 3 plus a 2-pixel gap
    assert_eq!(&bytes[..head.len()], head);
    let px = &bytes[head.len()..];
    assert_eq!(px.len(), 64);
    assert_eq!(px[0], 0, "tile 0 is black");
    assert_eq!(px[5], 255, "tile 1 is white");
}

#[test]
fn mismatched_networks_are_refused() {
    setup();
    let mut g = Net::new(&[LATENT]).unwrap();
    g.add(Layer::dense(LATENT, 3).unwrap()).unwrap();
    let mut d = Net::new(&[2]).unwrap();
    d.add(Layer::dense(2, 1).unwrap()).unwrap();
    let o1 = Optim::adam(1e-3, 0.5, 0.999, 1e-8, 0.0).unwrap();
    let o2 = Optim::adam(1e-3, 0.5, 0.999, 1e-8, 0.0).unwrap();
    let e = Gan::new(g, d, o1, o2).unwrap_err();
    assert!(e.message().starts_with("dng_gan_create"), "{}", e.message());
    assert!(
        e.message().contains("[3]") && e.message().contains("[2]"),
        "{}",
        e.message()
    );
}
