//! Train the MLP GAN on Fashion-MNIST for a few steps and write a grid of
//! generated garments.
//!
//!     cargo run --release --example mlp_gan -- --steps 300 --out grid.pgm
//!
//! Run with --help for the options.

use std::path::PathBuf;
use std::process::exit;
use std::time::Instant;

use dnngen::{Dataset, Gan, Init, Layer, Net, Optim, Rng, Tensor};

const LATENT: i64 = 100;

struct Options {
    data: PathBuf,
    steps: i64,
    batch: i64,
    limit: usize,
    seed: u64,
    threads: i32,
    report: i64,
    out: PathBuf,
    save: Option<PathBuf>,
    resume: Option<PathBuf>,
}

const USAGE: &str = "usage: mlp_gan [options]
Train an MLP GAN on Fashion-MNIST with libdnngen and write a sample grid.

  --steps N      train until N discriminator steps (default 300)
  --batch N      batch size (default 64)
  --limit N      use only the first N training images (default all)
  --seed N       random seed (default 1)
  --threads N    threads, 0 = all processors (default 1)
  --report N     progress line every N steps (default 50)
  --data DIR     Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)
  --out FILE     sample grid, .pgm or .png (default mlp_gan.pgm)
  --save FILE    write a checkpoint at the end
  --resume FILE  continue from a checkpoint";

fn parse_args() -> Options {
    let mut o = Options {
        data: PathBuf::from("/usr/share/datasets/fashion-mnist"),
        steps: 300,
        batch: 64,
        limit: 0,
        seed: 1,
        threads: 1,
        report: 50,
        out: PathBuf::from("mlp_gan.pgm"),
        save: None,
        resume: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--help" || a == "-h" {
            println!("{}", USAGE);
            exit(0);
        }
        let v = args
            .next()
            .unwrap_or_else(|| usage_error(&format!("{} needs a value", a)));
        let num = |v: &str| -> i64 {
            v.parse()
                .ok()
                .filter(|&n: &i64| n >= 0)
                .unwrap_or_else(|| usage_error(&format!("{} takes a number, not {:?}", a, v)))
        };
        match a.as_str() {
            "--steps" => o.steps = num(&v),
            "--batch" => o.batch = num(&v).max(1),
            "--limit" => o.limit = num(&v) as usize,
            "--seed" => o.seed = num(&v) as u64,
            "--threads" => o.threads = num(&v) as i32,
            "--report" => o.report = num(&v).max(1),
            "--data" => o.data = PathBuf::from(v),
            "--out" => o.out = PathBuf::from(v),
            "--save" => o.save = Some(PathBuf::from(v)),
            "--resume" => o.resume = Some(PathBuf::from(v)),
            _ => usage_error(&format!("unknown option {}", a)),
        }
    }
    o
}

fn usage_error(msg: &str) -> ! {
    eprintln!("mlp_gan: {}\n{}", msg, USAGE);
    exit(2);
}

/// Report a failed call and exit, as the C examples do.
trait OrDie<T> {
    fn or_die(self, what: &str) -> T;
}

impl<T> OrDie<T> for dnngen::Result<T> {
    fn or_die(self, what: &str) -> T {
        self.unwrap_or_else(|e| {
            eprintln!("mlp_gan: {}: {}", what, e);
            exit(1);
        })
    }
}

fn build(seed: u64) -> dnngen::Result<Gan> {
    let mut g = Net::new(&[LATENT])?;
    g.add(Layer::dense(LATENT, 256)?)?
        .add(Layer::leaky_relu(0.2)?)?
        .add(Layer::dense(256, 512)?)?
        .add(Layer::leaky_relu(0.2)?)?
        .add(Layer::dense(512, 784)?)?
        .add(Layer::tanh()?)?
        .add(Layer::reshape(&[1, 28, 28])?)?;
    let mut d = Net::new(&[1, 28, 28])?;
    d.add(Layer::flatten()?)?
        .add(Layer::dense(784, 512)?)?
        .add(Layer::leaky_relu(0.2)?)?
        .add(Layer::dense(512, 256)?)?
        .add(Layer::leaky_relu(0.2)?)?
        .add(Layer::dense(256, 1)?)?;
    let mut rng = Rng::new(seed)?;
    g.init(Init::Default, &mut rng)?;
    d.init(Init::Default, &mut rng)?;
    let g_opt = Optim::adam(2e-4, 0.5, 0.999, 1e-8, 0.0)?;
    let d_opt = Optim::adam(2e-4, 0.5, 0.999, 1e-8, 0.0)?;
    let mut gan = Gan::new(g, d, g_opt, d_opt)?;
    gan.set_seed(seed)?;
    Ok(gan)
}

fn load(o: &Options) -> dnngen::Result<Dataset> {
    let images = o.data.join("train-images-idx3-ubyte.gz");
    let mut ds = Dataset::load_idx(&images, None)?;
    if o.limit > 0 && o.limit < ds.len() {
        // split() puts the last part in its second half: keep the first.
        let frac = 1.0 - o.limit as f64 / ds.len() as f64;
        ds = ds.split(frac, None)?.0;
    }
    // The generator's tanh makes [-1, 1]; IDX images come in [0, 1].
    if let Some(x) = ds.x_mut() {
        for v in x.as_mut_slice() {
            *v = *v * 2.0 - 1.0;
        }
    }
    Ok(ds)
}

fn main() {
    let o = parse_args();
    if dnngen::version_string() != env!("DNNGEN_PC_VERSION") {
        eprintln!(
            "mlp_gan: built for libdnngen {} but loaded {}",
            env!("DNNGEN_PC_VERSION"),
            dnngen::version_string()
        );
        exit(1);
    }
    dnngen::set_num_threads(o.threads).or_die("--threads");
    let mut gan = build(o.seed).or_die("building the networks");
    if let Some(r) = &o.resume {
        gan.load_checkpoint(r).or_die("--resume");
    }
    let mut zr = Rng::new(o.seed + 424242).or_die("rng");
    let mut z = Tensor::zeros(&[64, LATENT]).or_die("z");
    z.fill_normal(&mut zr, 0.0, 1.0).or_die("z");

    if gan.steps() < o.steps {
        let mut ds = load(&o).unwrap_or_else(|e| {
            eprintln!(
                "mlp_gan: {}\n(install the data with `apt-get install \
                 dataset-fashion-mnist` or pass --data)",
                e
            );
            exit(1);
        });
        let n = ds.len() as i64;
        if o.batch > n {
            usage_error(&format!("--batch {} exceeds the {} images", o.batch, n));
        }
        println!(
            "mlp_gan: {} images, batch {}, steps {}..{}, {} threads",
            n,
            o.batch,
            gan.steps(),
            o.steps,
            dnngen::num_threads()
        );
        let mut order = Rng::new(o.seed).or_die("rng");
        let mut x = Tensor::zeros(&[o.batch, 1, 28, 28]).or_die("batch");
        let per_epoch = n / o.batch;
        let mut t_last = Instant::now();
        let (mut acc, mut since) = ([0.0f32; 4], 0);
        while gan.steps() < o.steps {
            let b = gan.steps() % per_epoch;
            if b == 0 {
                ds.shuffle(&mut order).or_die("shuffle");
            }
            ds.batch(b * o.batch, o.batch, &mut x, None).or_die("batch");
            let st = gan.step(&x, None).or_die("training step");
            for (a, v) in acc
                .iter_mut()
                .zip([st.d_loss, st.g_loss, st.d_real, st.d_fake])
            {
                *a += v;
            }
            since += 1;
            if st.step % o.report == 0 || st.step == o.steps {
                let k = since as f32;
                println!(
                    "step {:5}/{}  d_loss {:.4}  g_loss {:.4}  D(real) {:.3}  D(fake) {:.3}  {:.1} steps/s",
                    st.step,
                    o.steps,
                    acc[0] / k,
                    acc[1] / k,
                    acc[2] / k,
                    acc[3] / k,
                    since as f64 / t_last.elapsed().as_secs_f64().max(1e-9)
                );
                t_last = Instant::now();
                acc = [0.0; 4];
                since = 0;
            }
        }
    }
    let grid = gan.generate(&z).or_die("sampling");
    dnngen::write_image_grid(&grid, 8, &o.out).or_die("writing the grid");
    println!("wrote {}", o.out.display());
    if let Some(s) = &o.save {
        gan.save_checkpoint(s).or_die("--save");
        println!("saved checkpoint {} at step {}", s.display(), gan.steps());
    }
}
