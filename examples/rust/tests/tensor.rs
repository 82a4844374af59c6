//! Tensors: construction, shapes, data access, zero-copy views, files.

mod common;

use common::{setup, TempDir};
use dnngen::{Rng, Status, Tensor};

#[test]
fn from_slice_keeps_shape_and_values() {
    setup();
    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
    let t = Tensor::from_slice(&[2, 3, 4], &data).unwrap();
    assert_eq!(t.ndim(), 3);
    assert_eq!(t.shape(), vec![2, 3, 4]);
    assert_eq!(t.numel(), 24);
    assert_eq!(t.dim(0), Some(2));
    assert_eq!(t.dim(-1), Some(4));
    assert_eq!(t.dim(3), None);
    assert_eq!(t.as_slice(), &data[..]);
    assert_eq!(t.to_vec(), data);
    // The library copied the data: changing the tensor leaves `data` alone.
    let mut t = t;
    t.as_mut_slice()[5] = 100.0;
    assert_eq!(data[5], -0.5);
    assert_eq!(t.to_vec()[5], 100.0);
    assert_eq!(t.into_vec()[5], 100.0);
}

#[test]
fn zeros_fill_copy_and_reshape() {
    setup();
    let mut t = Tensor::zeros(&[3, 2]).unwrap();
    assert!(t.as_slice().iter().all(|&v| v == 0.0));
    t.fill(1.25).unwrap();
    assert!(t.as_slice().iter().all(|&v| v == 1.25));
    t.copy_from_slice(&[1., 2., 3., 4., 5., 6.]).unwrap();
    t.reshape(&[2, 3]).unwrap();
    assert_eq!(t.shape(), vec![2, 3]);
    assert_eq!(t.to_vec(), vec![1., 2., 3., 4., 5., 6.]);
    let c = t.try_clone().unwrap();
    t.fill(0.0).unwrap();
    assert_eq!(c.to_vec(), vec![1., 2., 3., 4., 5., 6.]);
    // Wrong counts are refused and nothing changes.
    let e = t.copy_from_slice(&[1., 2.]).unwrap_err();
    assert!(e.status().is_some(), "{}", e);
    assert!(
        e.message().contains("dng_tensor_copy_in"),
        "{}",
        e.message()
    );
    let e = t.reshape(&[4, 2]).unwrap_err();
    assert_eq!(e.status(), Some(Status::Shape), "{}", e);
    assert_eq!(t.shape(), vec![2, 3]);
}

#[test]
fn wrap_is_zero_copy() {
    setup();
    let mut buf = vec![1.0f32, 2.0, 3.0, 4.0];
    {
        let mut v = Tensor::wrap(&[2, 2], &mut buf).unwrap();
        assert_eq!(v.shape(), vec![2, 2]);
        assert_eq!(v.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
        v.fill(7.0).unwrap();
    }
    assert_eq!(buf, vec![7.0; 4]);
    let e = Tensor::wrap(&[3, 2], &mut buf).unwrap_err();
    assert_eq!(e.status(), Some(Status::Shape));
    assert!(e.message().contains("4 floats"), "{}", e.message());
}

#[test]
fn random_fills_are_reproducible_and_well_spread() {
    setup();
    let mut a = Tensor::zeros(&[10000]).unwrap();
    let mut b = Tensor::zeros(&[10000]).unwrap();
    a.fill_normal(&mut Rng::new(42).unwrap(), 1.0, 2.0).unwrap();
    b.fill_normal(&mut Rng::new(42).unwrap(), 1.0, 2.0).unwrap();
    assert_eq!(a.as_slice(), b.as_slice(), "same seed, same numbers");
    let n = a.numel() as f64;
    let mean = a.as_slice().iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = a
        .as_slice()
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    // 10000 draws: the standard error of the mean is 0.02.
    assert!((mean - 1.0).abs() < 0.08, "mean {}", mean);
    assert!((var.sqrt() - 2.0).abs() < 0.08, "std {}", var.sqrt());

    let mut r = Rng::new(7).unwrap();
    a.fill_uniform(&mut r, -0.5, 0.5).unwrap();
    assert!(a.as_slice().iter().all(|&v| (-0.5..0.5).contains(&v)));
    let mean = a.as_slice().iter().map(|&v| v as f64).sum::<f64>() / n;
    assert!(mean.abs() < 0.02, "uniform mean {}", mean);

    // A saved state replays the stream.
    let mut r = Rng::new(9).unwrap();
    let st = r.state().unwrap();
    let mut x = [0.0f32; 5];
    let mut y = [0.0f32; 5];
    r.uniform(&mut x, 0.0, 1.0).unwrap();
    r.set_state(&st).unwrap();
    r.uniform(&mut y, 0.0, 1.0).unwrap();
    assert_eq!(x, y);
}

#[test]
fn npy_round_trip() {
    setup();
    let dir = TempDir::new("npy");
    let t = Tensor::from_slice(&[2, 1, 3], &[0.5, -1.0, 2.0, 3.5, 1e-3, -7.25]).unwrap();
    let p = dir.path("t.npy");
    t.save_npy(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let u = Tensor::load_npy(&p).unwrap();
    assert_eq!(u.shape(), vec![2, 1, 3]);
    assert_eq!(u.as_slice(), t.as_slice());
    let e = Tensor::load_npy(dir.path("missing.npy")).unwrap_err();
    assert_eq!(e.status(), None, "constructors report only a message");
    assert!(e.message().contains("missing.npy"), "{}", e.message());
}

#[test]
fn debug_shows_shape() {
    setup();
    let t = Tensor::from_slice(&[1, 2], &[1.0, 2.0]).unwrap();
    assert_eq!(format!("{:?}", t), "Tensor(shape=[1, 2], data=[1.0, 2.0])");
}
