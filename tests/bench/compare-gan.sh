#!/bin/sh
# Train the same GAN with libdnngen and with PyTorch for the same steps on
# the same threads, then score both sample sets with the same Frechet
# distance (classifier features, 10000 samples vs the test set).
#
#   tests/bench/compare-gan.sh BUILD_DIR [model] [steps] [threads]
set -eu
build=${1:?usage: compare-gan.sh BUILD_DIR [mlp|dcgan] [steps] [threads]}
model=${2:-dcgan}
steps=${3:-3000}
threads=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$(mktemp -d)}
gan="$build/examples/fashion-gan"

echo "== libdnngen: $model, $steps steps, $threads threads"
BLIS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads \
  "$gan" --model "$model" --steps "$steps" --threads "$threads" --seed 1 \
  --report 500 --out "$out/dng-$model.png" \
  --dump-samples 10000 "$out/dng-$model.npy" | tee "$out/dng.log"
echo "== PyTorch: $model, $steps steps, $threads threads"
/usr/bin/python3 "$here/torch_gan.py" --model "$model" --steps "$steps" \
  --threads "$threads" --seed 1 --dump "$out/torch-$model.npy" \
  | tee "$out/torch.log"
dng_rate=$(grep -o '[0-9.]* steps/s' "$out/dng.log" | tail -1 | cut -d' ' -f1)
torch_rate=$(sed -n 's/^torch_steps_per_s=//p' "$out/torch.log")
dng_fid=$("$gan" --threads "$threads" --score "$out/dng-$model.npy" --classifier \
  "$out/features.dngm" | sed -n 's/^fid=//p')
torch_fid=$("$gan" --threads "$threads" --score "$out/torch-$model.npy" --classifier \
  "$out/features.dngm" | sed -n 's/^fid=//p')
echo "model=$model steps=$steps threads=$threads"
echo "dnngen: fid=$dng_fid steps/s=$dng_rate"
echo "torch:  fid=$torch_fid steps/s=$torch_rate"
awk -v a="$dng_rate" -v b="$torch_rate" \
  'BEGIN { printf "speed ratio dnngen/torch = %.2f\n", a / b }'
echo "outputs in $out"
