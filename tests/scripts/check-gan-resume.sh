#!/bin/sh
# Resume must be exact: N+M steps straight and N steps, a checkpoint, a
# fresh process that loads it and runs M more must end in byte-identical
# checkpoints (networks, optimizer state, EMA, step count, RNG state).
set -eu
gan=${1:?usage: check-gan-resume.sh FASHION_GAN [model]}
model=${2:-mlp}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common="--model $model --limit 320 --batch 16 --seed 5 --ema 0.9 --quiet --out $dir/grid.pgm"
"$gan" $common --steps 12 --save "$dir/straight.ckpt"
"$gan" $common --steps 5 --save "$dir/first.ckpt"
"$gan" $common --steps 12 --resume "$dir/first.ckpt" --save "$dir/resumed.ckpt"
if cmp "$dir/straight.ckpt" "$dir/resumed.ckpt"; then
  echo "ok: resumed run is bit-identical ($model)"
else
  echo "FAIL: resumed checkpoint differs from the straight run ($model)"
  exit 1
fi
# The sample grid is a real PGM of 8x8 tiles of 28x28 with 2-pixel gaps.
head -c 2 "$dir/grid.pgm" | grep -q P5 || { echo "FAIL: grid is not PGM"; exit 1; }
