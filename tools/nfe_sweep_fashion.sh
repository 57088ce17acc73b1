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
# The judged comparison: 3 sampling seeds each (paired: the same noise per seed).
sample ddim --set sampler.num_inference_steps=100 --set sampler.clip_sample=true --seeds 3
sample dpm_solver --set sampler.steps=20 --set sampler.clip_sample=true --seeds 3
sample edm --set sampler.steps=18 --set sampler.sigma_max=80 --set sampler.clip_denoised=true --seeds 3
sample dpm_solver --set sampler.clip_sample=true --sweep sampler.steps=10,50
sample edm --set sampler.sigma_max=80 --set sampler.clip_denoised=true --sweep sampler.steps=6,10,25
sample edm --set sampler.sigma_max=80 --set sampler.steps=18  # unclipped
# One-value sweeps: each tolerance pair gets a run folder of its own under $out/ode.
for tol in 1e-2 1e-3 1e-5; do sample ode --sweep sampler.rtol=$tol --sweep sampler.atol=$tol; done
sample reverse_sde --sweep sampler.steps=50,100,250
sample pc --sweep sampler.steps=25,50,125
[ "${WITH_DDPM:-0}" = 1 ] && sample ddpm  # ancestral DDPM: 1000 NFE (slow on CPU)

files=$(cat "$out"/*.files)
"$runner" compare $files
python3 "$(dirname "$0")/plot_runs.py" $files --x nfe -o "$out"
