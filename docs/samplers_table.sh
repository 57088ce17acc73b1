#!/usr/bin/env bash
# Makes the sampler × model table of docs/samplers.md: every sampler that takes a
# denoiser on every model family that defines a score, with short runs.
#   docs/samplers_table.sh [RUNNER] [OUT]     (defaults: build/runner, /tmp/genfw_sampler_table)
#   FAMILIES="ncsn ddpm_unet" docs/samplers_table.sh ...   (some rows only)
# Families: the exact mixture (analytic_gmm: score; analytic_gmm_eps: ε) and a
# trained score MLP, DDPM MLP and class-conditional DDPM MLP (classifier-free
# guidance, s = 2) on toy2d's 0.2·N((−5,−5), I) + 0.8·N((5,5), I); a tiny NCSN and
# a tiny DDPM U-Net on Fashion-MNIST. Metric: FID on raw coordinates/pixels
# (identity extractor; toy: 2000 samples against 5000 test points; Fashion: 64
# samples against 2000 test images). Prints one markdown row per family.
set -euo pipefail
export GENFW_PLOTS=off  # no plots: only the numbers
RUNNER=$(realpath "${1:-build/runner}")
OUT=${2:-/tmp/genfw_sampler_table}
mkdir -p "$OUT"
cd "$OUT"

toy_data='[data]
plugin = "toy2d"
distribution = "gmm"
means = [[-5.0, -5.0], [5.0, 5.0]]
weights = [0.2, 0.8]
stds = [1.0]
size = 20000
[features]
extractor = "identity"
reference_split = "test"
max_reference = 5000
[[metrics]]
plugin = "fid"
[log]
progress = "off"'
fashion_features='[features]
extractor = "identity"
reference_split = "test"
max_reference = 2000
[[metrics]]
plugin = "fid"
[log]
progress = "off"'
mixture='means = [[-5.0, -5.0], [5.0, 5.0]]
weights = [0.2, 0.8]
stds = [1.0]'

declare -A base
base[analytic_score]="[model]
plugin = \"analytic_gmm\"
$mixture
sigma_begin = 20.0
sigma_end = 0.01
num_levels = 100"
base[analytic_eps]="[model]
plugin = \"analytic_gmm_eps\"
$mixture"
base[score_mlp]='[model]
plugin = "score_mlp"
sigma_begin = 20.0
sigma_end = 0.1
num_levels = 10
[objective]
plugin = "dsm"
[train]
steps = 3000
batch_size = 128
lr = 1e-3'
base[ddpm_mlp]='[model]
plugin = "eps_mlp"
[objective]
plugin = "ddpm"
[train]
steps = 3000
batch_size = 256
lr = 1e-3'
base[guided_ddpm_mlp]='[model]
plugin = "eps_mlp"
num_classes = 2
[objective]
plugin = "ddpm"
label_dropout = 0.1
[train]
steps = 3000
batch_size = 256
lr = 1e-3'
base[ncsn]='[data]
plugin = "fashion_mnist"
range = "zero_one"
[model]
plugin = "ncsn"
ngf = 8
num_levels = 10
sigma_begin = 1.0
sigma_end = 0.01
[objective]
plugin = "dsm"
[train]
steps = 300
batch_size = 32
lr = 1e-3'
base[ddpm_unet]='[data]
plugin = "fashion_mnist"
range = "minus_one_one"
[model]
plugin = "ddpm_unet"
ch = 16
ch_mult = [1, 2, 2]
num_res_blocks = 1
attn_resolutions = [7]
num_train_timesteps = 100
[objective]
plugin = "ddpm"
[train]
steps = 300
batch_size = 32
lr = 1e-3
grad_clip = 1.0'

samplers=(langevin annealed_langevin pc ode reverse_sde ddpm ddim dpm_solver edm)
# Sampler settings, "key=value" each (TOML values), per domain.
declare -A toy fashion
toy[langevin]='steps=200 step_size=0.05'
toy[annealed_langevin]='sigmas=[20.0,10.7,5.69,3.04,1.62,0.866,0.462,0.247,0.132,0.1] steps_per_level=20 step_size=1e-3 denoise=true'
toy[pc]='steps=100'
toy[ode]='rtol=1e-3 atol=1e-3'
toy[reverse_sde]='steps=200'
toy[ddpm]='clip_sample=false'
toy[ddim]='num_inference_steps=10'
toy[dpm_solver]='steps=8'
toy[edm]='steps=10'
fashion[langevin]='steps=50 step_size=2e-5'
fashion[annealed_langevin]='sigmas=[1.0,0.599,0.359,0.215,0.129,0.0774,0.0464,0.0278,0.0167,0.01] steps_per_level=10 step_size=6e-5 denoise=true'
fashion[pc]='steps=50'
fashion[ode]='rtol=1e-2 atol=1e-2'
fashion[reverse_sde]='steps=100'
fashion[ddpm]='clip_sample=true'
fashion[ddim]='num_inference_steps=10'
fashion[dpm_solver]='steps=8'
fashion[edm]='steps=10'

# "FID samples/s NFE" from a runner's stderr.
numbers() {
  local fid rate
  fid=$(grep -o 'metric fid = [-0-9.e+naif]*' "$1" | tail -1 | awk '{print $4}')
  rate=$(grep -o 'sampled [0-9]* in [0-9.e+-]* s (NFE [0-9]*)' "$1" | tail -1 |
         awk '{gsub(/[()]/, ""); printf "%.0f %s", $2 / $4, $7}')
  echo "${fid:-fail} ${rate:-? ?}"
}

for family in ${FAMILIES:-analytic_score analytic_eps score_mlp ddpm_mlp guided_ddpm_mlp ncsn ddpm_unet}; do
  if [[ $family == ncsn || $family == ddpm_unet ]]; then domain=fashion n=64; data=$fashion_features; else domain=toy n=2000; data=$toy_data; fi
  guidance=""
  [[ $family == guided_ddpm_mlp ]] && guidance="guidance_scale=2.0"
  declare -n settings=$domain
  row="| $family |"
  parent=""
  if [[ $family != analytic_* ]]; then
    # Train once (sampling 16 with edm), then `runner sample` with each sampler.
    printf 'name = "%s"\nseed = 0\n%s\n%s\n[sampler]\nplugin = "edm"\nsteps = 4\nnum_samples = 16\nbatch_size = 16\n' \
      "$family" "${base[$family]}" "$data" > "$family.toml"
    "$RUNNER" "$family.toml" --out "$OUT/$family" > "$family.log" 2>&1
    parent="$OUT/$family/$family.h5"
  fi
  for sampler in "${samplers[@]}"; do
    log="$family.$sampler.log"
    keys="${settings[$sampler]} $guidance num_samples=$n batch_size=$n"
    if [[ -z $parent ]]; then
      printf 'name = "%s_%s"\nseed = 0\n%s\n%s\n[sampler]\nplugin = "%s"\n' "$family" "$sampler" "${base[$family]}" "$data" "$sampler" > "$family.$sampler.toml"
      for kv in $keys; do echo "${kv%%=*} = ${kv#*=}" >> "$family.$sampler.toml"; done
      "$RUNNER" "$family.$sampler.toml" --out "$OUT/$family.$sampler" > "$log" 2>&1 || true
    else
      sets=()
      for kv in $keys; do sets+=(--set "sampler.$kv"); done
      "$RUNNER" sample "$parent" --sampler "$sampler" "${sets[@]}" --out "$OUT/$family.$sampler" > "$log" 2>&1 || true
    fi
    read -r fid rate nfe <<< "$(numbers "$log")"
    row+=" $fid ($rate/s, $nfe) |"
  done
  echo "$row"
done
