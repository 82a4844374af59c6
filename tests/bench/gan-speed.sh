#!/bin/sh
# Steps per second of one GAN training step, libdnngen against PyTorch, the
# same model, batch and thread count, alternating runs in the same session;
# prints the median of each and their ratio (above 1: libdnngen faster).
#
#   tests/bench/gan-speed.sh BUILD_DIR [mlp|dcgan] [steps] [threads] [reps]
set -eu
build=${1:?usage: gan-speed.sh BUILD_DIR [mlp|dcgan] [steps] [threads] [reps]}
model=${2:-dcgan}
steps=${3:-200}
threads=${4:-2}
reps=${5:-3}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
i=0
while [ "$i" -lt "$reps" ]; do
  "$build/examples/fashion-gan" --model "$model" --steps "$steps" \
    --threads "$threads" --report "$steps" --sample-every 1000000 \
    --out "$tmp/g.pgm" | grep -o '[0-9.]* steps/s' | cut -d' ' -f1 \
    >> "$tmp/dng"
  /usr/bin/python3 "$here/torch_gan.py" --model "$model" --steps "$steps" \
    --threads "$threads" --report "$steps" \
    | sed -n 's/^torch_steps_per_s=//p' >> "$tmp/torch"
  i=$((i + 1))
done
d=$(median < "$tmp/dng")
t=$(median < "$tmp/torch")
echo "model=$model steps=$steps threads=$threads reps=$reps"
echo "dnngen median steps/s: $d   (runs: $(tr '\n' ' ' < "$tmp/dng"))"
echo "torch  median steps/s: $t   (runs: $(tr '\n' ' ' < "$tmp/torch"))"
awk -v a="$d" -v b="$t" 'BEGIN { printf "ratio dnngen/torch = %.2f\n", a / b }'
