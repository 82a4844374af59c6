//! Networks, losses, optimizers and supervised training.

mod common;

use common::{assert_close, setup, TempDir};
use dnngen::{
    evaluate, fit, loss, loss_grad, ControlFlow, Dataset, FitOptions, Layer, LossKind, Net, Optim,
    Rng, Status, Tensor,
};

const XOR_X: [f32; 8] = [0., 0., 0., 1., 1., 0., 1., 1.];
const XOR_Y: [f32; 4] = [0., 1., 1., 0.];

fn xor_net() -> Net {
    let mut net = Net::new(&[2]).unwrap();
    net.add(Layer::dense(2, 8).unwrap())
        .unwrap()
        .add(Layer::tanh().unwrap())
        .unwrap()
        .add(Layer::dense(8, 1).unwrap())
        .unwrap();
    net
}

#[test]
fn dense_forward_matches_naive_reference() {
    setup();
    let mut net = Net::new(&[3]).unwrap();
    net.add(Layer::dense(3, 2).unwrap()).unwrap();
    let mut rng = Rng::new(3).unwrap();
    net.param_mut(0)
        .unwrap()
        .fill_normal(&mut rng, 0.0, 1.0)
        .unwrap();
    net.param_mut(1)
        .unwrap()
        .fill_normal(&mut rng, 0.0, 1.0)
        .unwrap();
    let w = net.param(0).unwrap().to_vec(); // [out=2, in=3]
    let b = net.param(1).unwrap().to_vec();
    assert_eq!(net.param(0).unwrap().shape(), vec![2, 3]);
    let x = Tensor::from_slice(&[2, 3], &[1.0, -2.0, 0.5, 0.25, 3.0, -1.0]).unwrap();
    let mut want = vec![0.0f32; 4];
    for n in 0..2 {
        for o in 0..2 {
            want[n * 2 + o] = b[o]
                + (0..3)
                    .map(|i| x.as_slice()[n * 3 + i] * w[o * 3 + i])
                    .sum::<f32>();
        }
    }
    let y = net.forward(&x).unwrap();
    assert_eq!(y.shape(), vec![2, 2]);
    assert_close(y.as_slice(), &want, 1e-5);

    // dL/dx = dy W and dL/dW = dy^T x for a dense layer.
    let dy = Tensor::from_slice(&[2, 2], &[1.0, 0.5, -1.0, 2.0]).unwrap();
    net.zero_grad().unwrap();
    let dx = net.backward_input(&dy).unwrap().to_vec();
    let mut want_dx = vec![0.0f32; 6];
    for n in 0..2 {
        for i in 0..3 {
            want_dx[n * 3 + i] = (0..2)
                .map(|o| dy.as_slice()[n * 2 + o] * w[o * 3 + i])
                .sum();
        }
    }
    assert_close(&dx, &want_dx, 1e-5);
    let gw = net.grad(0).unwrap().to_vec();
    for o in 0..2 {
        for i in 0..3 {
            let g: f32 = (0..2)
                .map(|n| dy.as_slice()[n * 2 + o] * x.as_slice()[n * 3 + i])
                .sum();
            assert!((gw[o * 3 + i] - g).abs() < 1e-5, "dW[{}][{}]", o, i);
        }
    }
    assert_close(&net.grad(1).unwrap().to_vec(), &[0.0, 2.5], 1e-6);
}

#[test]
fn sgd_step_is_w_minus_lr_g() {
    setup();
    let mut net = Net::new(&[2]).unwrap();
    net.add(Layer::dense(2, 1).unwrap()).unwrap();
    let before: Vec<f32> = net.param(0).unwrap().to_vec();
    {
        let (p, g) = net.param_and_grad_mut(0).unwrap();
        assert_eq!(p.shape(), g.shape());
        g.copy_from_slice(&[1.0, -2.0]).unwrap();
    }
    net.grad_mut(1).unwrap().fill(0.5).unwrap();
    let mut opt = Optim::sgd(0.1, 0.0, false, 0.0).unwrap();
    assert!((opt.lr() - 0.1).abs() < 1e-7);
    let b0 = net.param(1).unwrap().to_vec()[0];
    opt.step(&mut net).unwrap();
    assert_close(
        &net.param(0).unwrap().to_vec(),
        &[before[0] - 0.1, before[1] + 0.2],
        1e-6,
    );
    assert!((net.param(1).unwrap().to_vec()[0] - (b0 - 0.05)).abs() < 1e-6);
    // The optimizer's state now belongs to `net`.
    let mut other = Net::new(&[2]).unwrap();
    other.add(Layer::dense(2, 1).unwrap()).unwrap();
    let e = opt.step(&mut other).unwrap_err();
    assert_eq!(e.status(), Some(Status::State));
}

#[test]
fn losses_match_closed_forms() {
    setup();
    let p = Tensor::from_slice(&[2, 1], &[0.5, -1.0]).unwrap();
    let t = Tensor::from_slice(&[2, 1], &[1.0, 0.0]).unwrap();
    let mut g = Tensor::zeros(&[2, 1]).unwrap();
    let mse = loss_grad(LossKind::Mse, &p, &t, &mut g).unwrap();
    assert!((mse - (0.25 + 1.0) / 2.0).abs() < 1e-6);
    assert_close(g.as_slice(), &[-0.5, -1.0], 1e-6);
    let bce = loss(LossKind::BceWithLogits, &p, &t).unwrap();
    let want = ((1.0f32 + (-0.5f32).exp()).ln() + (1.0f32 + (-1.0f32).exp()).ln()) / 2.0;
    assert!((bce - want).abs() < 1e-6, "{} vs {}", bce, want);
    let logits = Tensor::from_slice(&[1, 3], &[1.0, 2.0, 3.0]).unwrap();
    let cls = Tensor::from_slice(&[1], &[2.0]).unwrap();
    let ce = loss(LossKind::CrossEntropy, &logits, &cls).unwrap();
    let lse = (1.0f32.exp() + 2.0f32.exp() + 3.0f32.exp()).ln();
    assert!((ce - (lse - 3.0)).abs() < 1e-5);
}

#[test]
fn xor_learns_to_full_accuracy_by_hand() {
    setup();
    let mut net = xor_net();
    let mut opt = Optim::adam(0.05, 0.9, 0.999, 1e-8, 0.0).unwrap();
    let x = Tensor::from_slice(&[4, 2], &XOR_X).unwrap();
    let t = Tensor::from_slice(&[4, 1], &XOR_Y).unwrap();
    let mut dy = Tensor::zeros(&[4, 1]).unwrap();
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..400 {
        net.zero_grad().unwrap();
        let y = net.forward(&x).unwrap();
        last = loss_grad(LossKind::BceWithLogits, y, &t, &mut dy).unwrap();
        first.get_or_insert(last);
        net.backward(&dy).unwrap();
        opt.step(&mut net).unwrap();
    }
    assert!(
        last < 0.05 && last < first.unwrap() / 10.0,
        "loss {:?} -> {}",
        first,
        last
    );
    let y = net.forward(&x).unwrap().to_vec();
    let pred: Vec<f32> = y.iter().map(|&v| if v > 0.0 { 1.0 } else { 0.0 }).collect();
    assert_eq!(pred, XOR_Y.to_vec(), "logits {:?}", y);
}

#[test]
fn fit_learns_xor_and_reports_every_epoch() {
    setup();
    let x = Tensor::from_slice(&[4, 2], &XOR_X).unwrap();
    let y = Tensor::from_slice(&[4, 1], &XOR_Y).unwrap();
    let ds = Dataset::from_tensors(&x, Some(&y)).unwrap();
    assert_eq!(ds.len(), 4);
    assert!(ds.has_labels());
    assert_eq!(ds.sample_shape().unwrap(), vec![2]);
    let mut net = xor_net();
    let mut opt = Optim::adam(0.05, 0.9, 0.999, 1e-8, 0.0).unwrap();
    let opts = FitOptions {
        epochs: 300,
        batch_size: 4,
        seed: 11,
        ..FitOptions::default()
    };
    let mut seen = Vec::new();
    fit(
        &mut net,
        &mut opt,
        LossKind::BceWithLogits,
        &ds,
        Some(&ds),
        &opts,
        |p| {
            seen.push(*p);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(seen.len(), 300);
    for (i, p) in seen.iter().enumerate() {
        assert_eq!(p.epoch, i as i32 + 1);
        assert_eq!(p.epochs, 300);
        assert_eq!(p.step, i as i64 + 1, "one batch of 4 per epoch");
        assert!(p.valid_loss.is_some());
    }
    let last = seen.last().unwrap();
    assert!(last.train_loss < 0.05, "{:?}", last);
    assert_eq!(last.valid_accuracy, Some(1.0), "{:?}", last);
    let ev = evaluate(&mut net, LossKind::BceWithLogits, &ds, 2).unwrap();
    assert_eq!(ev.accuracy, Some(1.0));
    assert!(
        (ev.loss - last.valid_loss.unwrap()).abs() < 1e-4,
        "{:?} vs {:?}",
        ev,
        last
    );
}

#[test]
fn fit_callback_can_stop_and_panics_do_not_cross_ffi() {
    setup();
    let x = Tensor::from_slice(&[4, 2], &XOR_X).unwrap();
    let y = Tensor::from_slice(&[4, 1], &XOR_Y).unwrap();
    let ds = Dataset::from_tensors(&x, Some(&y)).unwrap();
    let mut net = xor_net();
    let mut opt = Optim::sgd(0.1, 0.0, false, 0.0).unwrap();
    let opts = FitOptions {
        epochs: 50,
        batch_size: 2,
        ..FitOptions::default()
    };
    let mut calls = 0;
    fit(&mut net, &mut opt, LossKind::Mse, &ds, None, &opts, |p| {
        calls += 1;
        assert_eq!(p.valid_loss, None);
        if p.epoch == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(calls, 3, "Break stops training after the epoch");

    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = fit(&mut net, &mut opt, LossKind::Mse, &ds, None, &opts, |p| {
            if p.epoch == 2 {
                panic!("stop from the callback");
            }
            ControlFlow::Continue(())
        });
    }));
    let msg = r.unwrap_err();
    assert_eq!(msg.downcast_ref::<&str>(), Some(&"stop from the callback"));
    // The library is intact afterwards.
    let out = net.forward(&x).unwrap();
    assert!(out.as_slice().iter().all(|v| v.is_finite()));
}

#[test]
fn bad_shapes_and_orders_give_errors_with_messages() {
    setup();
    let mut net = Net::new(&[3]).unwrap();
    net.add(Layer::dense(3, 8).unwrap()).unwrap();
    let e = net.add(Layer::dense(4, 2).unwrap()).unwrap_err();
    assert_eq!(e.status(), Some(Status::Shape), "{}", e);
    assert!(
        e.message().starts_with("dng_net_add: layer 1 (dense)"),
        "{}",
        e.message()
    );
    assert!(e.to_string().ends_with("(shape mismatch)"), "{}", e);
    assert_eq!(net.num_layers(), 1, "the failed layer was not added");

    let e = net.backward(&Tensor::zeros(&[2, 8]).unwrap()).unwrap_err();
    assert_eq!(e.status(), Some(Status::State), "{}", e);
    let e = net.forward(&Tensor::zeros(&[2, 4]).unwrap()).unwrap_err();
    assert_eq!(e.status(), Some(Status::Shape), "{}", e);
    assert!(e.message().contains("dng_net_forward"), "{}", e.message());

    let e = Tensor::from_slice(&[2, 2], &[1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(e.status(), Some(Status::Shape));
    assert_eq!(
        e.message(),
        "Tensor::from_slice: data has 3 floats but shape [2, 2] needs 4"
    );
    let e = Tensor::zeros(&[]).unwrap_err();
    assert_eq!(e.status(), Some(Status::InvalidArgument));
    let e = Tensor::zeros(&[2, 0]).unwrap_err();
    assert_eq!(e.status(), None);
    assert!(e.message().contains("dng_tensor_create"), "{}", e.message());

    let e = Layer::dense(0, 3).err().unwrap();
    assert!(e.message().contains("dng_dense"), "{}", e.message());
    let e = Optim::adam(-1.0, 0.9, 0.999, 1e-8, 0.0).err().unwrap();
    assert!(e.message().contains("lr"), "{}", e.message());

    let p = Tensor::from_slice(&[1, 3], &[0.0, 1.0, 2.0]).unwrap();
    let bad = Tensor::from_slice(&[1], &[3.0]).unwrap();
    let e = loss(LossKind::CrossEntropy, &p, &bad).unwrap_err();
    assert_eq!(e.status(), Some(Status::InvalidArgument), "{}", e);

    let e = Net::load("/nonexistent/dir/model.dngm").err().unwrap();
    assert!(
        e.message().contains("/nonexistent/dir/model.dngm"),
        "{}",
        e.message()
    );
    let e = net.param_index("9.weight").unwrap_err();
    assert!(e.message().contains("9.weight"), "{}", e.message());
    assert!(net.param(2).is_none() && net.grad(99).is_none());
}

#[test]
fn names_summary_and_save_load() {
    setup();
    let dir = TempDir::new("net");
    let mut net = Net::new(&[4]).unwrap();
    net.add(Layer::dense(4, 3).unwrap())
        .unwrap()
        .add(Layer::batchnorm(3).unwrap())
        .unwrap()
        .add(Layer::leaky_relu(0.2).unwrap())
        .unwrap()
        .add(Layer::dense(3, 2).unwrap())
        .unwrap();
    assert_eq!(net.num_layers(), 4);
    assert_eq!(net.output_shape().unwrap(), vec![2]);
    let names: Vec<&str> = (0..net.num_params())
        .map(|i| net.param_name(i).unwrap())
        .collect();
    assert_eq!(
        names,
        ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    );
    assert_eq!(net.param_index("3.bias").unwrap(), 5);
    assert_eq!(net.param_count(), 4 * 3 + 3 + 3 + 3 + 3 * 2 + 2);
    let bufs: Vec<&str> = (0..net.num_buffers())
        .map(|i| net.buffer_name(i).unwrap())
        .collect();
    assert_eq!(bufs, ["1.running_mean", "1.running_var"]);
    let s = net.summary().unwrap();
    assert_eq!(
        s.lines().filter(|l| l.contains("dense")).count(),
        2,
        "{}",
        s
    );

    let mut rng = Rng::new(5).unwrap();
    let mut x = Tensor::zeros(&[5, 4]).unwrap();
    x.fill_normal(&mut rng, 0.0, 1.0).unwrap();
    net.forward(&x).unwrap(); // updates the running statistics
    net.set_training(false).unwrap();
    let y = net.forward(&x).unwrap().to_vec();
    let path = dir.path("n.dngm");
    net.save(&path).unwrap();
    let mut back = Net::load(&path).unwrap();
    back.set_training(false).unwrap();
    assert_eq!(
        back.forward(&x).unwrap().to_vec(),
        y,
        "bit-identical after load"
    );

    let mut copy = Net::new(&[4]).unwrap();
    copy.add(Layer::dense(4, 3).unwrap()).unwrap();
    let e = copy.copy_weights_from(&net).unwrap_err();
    assert!(e.status().is_some(), "{}", e);
}
