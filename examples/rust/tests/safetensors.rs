//! Safetensors export and import (PyTorch names).

mod common;

use common::{setup, TempDir};
use dnngen::{Layer, Net, Rng, Status, Tensor};

fn build() -> Net {
    let mut net = Net::new(&[4]).unwrap();
    net.add(Layer::dense(4, 3).unwrap())
        .unwrap()
        .add(Layer::batchnorm(3).unwrap())
        .unwrap()
        .add(Layer::leaky_relu(0.2).unwrap())
        .unwrap()
        .add(Layer::dense(3, 2).unwrap())
        .unwrap();
    net
}

#[test]
fn safetensors_round_trip() {
    setup();
    let dir = TempDir::new("st");
    let mut net = build();
    let mut rng = Rng::new(8).unwrap();
    net.init(dnngen::Init::HeNormal, &mut rng).unwrap();
    let mut x = Tensor::zeros(&[5, 4]).unwrap();
    x.fill_normal(&mut rng, 0.0, 1.0).unwrap();
    net.forward(&x).unwrap(); // moves the running statistics
    net.set_training(false).unwrap();
    let y = net.forward(&x).unwrap().to_vec();

    let st = dir.path("n.safetensors");
    net.save_safetensors(&st).unwrap();
    let mut fresh = build();
    fresh.set_training(false).unwrap();
    assert_ne!(fresh.forward(&x).unwrap().to_vec(), y);
    fresh.load_safetensors(&st).unwrap();
    assert_eq!(fresh.forward(&x).unwrap().to_vec(), y, "bit-identical");

    let mut other = Net::new(&[4]).unwrap();
    other.add(Layer::dense(4, 5).unwrap()).unwrap();
    let e = other.load_safetensors(&st).unwrap_err();
    assert!(e.status() != Some(Status::Io), "{}", e);
    assert!(!e.message().is_empty());
}
