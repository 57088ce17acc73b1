#!/usr/bin/env bash
# The NFE sweep of experiments/nfe_sweep_fashion.toml end to end: trains the DDPM
# once (with the DDIM sweep), samples its weights with every other sampler at
# several NFE budgets, prints one `runner compare` table and plots every metric
# against NFE ($OUT_DIR/fid_vs_nfe.png, ...) and the training loss.
#   tools/nfe_sweep_fashion.sh [BUILD_DIR] [OUT_DIR]      (defaults: build, runs/nfe)
set -euo pipefail
build=${1:-build}
out=${2:-runs/nfe}
runner="$build/runner"
mkdir -p "$out"

"$runner" experiments/nfe_sweep_fashion.toml --out "$out/ddim" | tee "$out/ddim.files"
trained=$(head -n 1 "$out/ddim.files")
sample() {  # sample SAMPLER ARGS...: one `runner sample` sweep into $out/SAMPLER
  local name=$1
  shift
  "$runner" sample "$trained" --sampler "$name" --out "$out/$name" \
    --set sampler.num_samples=256 --set sampler.batch_size=256 "$@" | tee -a "$out/$name.files"
}
sample dpm_solver --set sampler.clip_sample=true --sweep sampler.steps=10,20,50
sample edm --set sampler.sigma_max=80 --sweep sampler.steps=6,10,18,25
for tol in 1e-2 1e-3 1e-5; do sample ode --set sampler.rtol=$tol --set sampler.atol=$tol; done
sample reverse_sde --sweep sampler.steps=50,100,250
sample pc --sweep sampler.steps=25,50,125
[ "${WITH_DDPM:-0}" = 1 ] && sample ddpm  # ancestral DDPM: 1000 NFE (slow on CPU)

files=$(cat "$out"/*.files)
"$runner" compare $files
python3 "$(dirname "$0")/plot_runs.py" $files --x nfe -o "$out"
