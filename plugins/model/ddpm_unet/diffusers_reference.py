"""diffusers reference data for `runner import diffusers` (docs/import.md).

Builds small UNet2DModels with random weights, saves each as diffusers'
DDPMPipeline.save_pretrained does (model_index.json, unet/, scheduler/), and
records what diffusers computes from them, into diffusers_fixtures/<name>/:

  reference.safetensors
    x, t, eps          the U-Net's output eps = unet(x, t).sample, t = [0, 10, 500, 999]
    ddim_x_T           DDIMPipeline's starting noise (torch.randn of its generator, seed 0)
    ddim_image         DDIMPipeline(eta 0, 10 steps, output_type "np"): clamp(x0/2 + 1/2, 0, 1), NHWC
    ddim_x0            the same loop's x0 before that postprocessing (scheduler.step as the pipeline calls it)
    ddim_x0_float64    that loop in float64: how far float32 rounding alone moves DDIM's result (with
                       clip_sample a random network's 10-step DDIM amplifies 1e-7 to ~1e-4, so the
                       C++ test's tolerance is a multiple of this spread)
    alphas_cumprod     DDPMScheduler's ᾱ_t (float64 from its float32 betas)
    ddpm_variance      DDPMScheduler._get_variance(t) for every t (its variance_type)

The networks share google/ddpm-cifar10-32's structure and config conventions but
are narrow (a few MB would not be a test fixture). With --full DIR it instead
saves a network of google/ddpm-cifar10-32's exact config (35.7M parameters,
random weights) into DIR with its reference.safetensors, for timing an import;
--record DIR records the references of a folder downloaded elsewhere (the real
google/ddpm-cifar10-32). Nothing is downloaded. The C++ test checks such a folder
too when GENFW_DIFFUSERS_FOLDER names it:

    GENFW_DIFFUSERS_FOLDER=$PWD/build/ddpm_cifar10_32_random ctest -R import_diffusers

Run after changing the cases (needs torch, diffusers and safetensors), e.g.

    PYTHONPATH=build/pydeps build-pip/venv/bin/python plugins/model/ddpm_unet/diffusers_reference.py
"""
import argparse
import copy
import json
import math
import os

import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))

# google/ddpm-cifar10-32's unet/config.json (diffusers 0.0.4 conversion of Ho et al.'s
# checkpoint) and scheduler/scheduler_config.json.
CIFAR10_32 = dict(
    sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256),
    layers_per_block=2, down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), downsample_padding=0,
    flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-6, norm_num_groups=32, attention_head_dim=None,
    act_fn="silu", center_input_sample=False, mid_block_scale_factor=1, time_embedding_type="positional")
CIFAR10_32_SCHEDULER = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                            clip_sample=True, variance_type="fixed_large")

CASES = {
    # The CIFAR-10 network's block structure (attention at 16×16) at widths 8/16.
    "cifar_like": (dict(CIFAR10_32, block_out_channels=(8, 16, 16, 16), norm_num_groups=4, dropout=0.1),
                   CIFAR10_32_SCHEDULER),
    # The other conventions: grayscale 28×28, attention at every level, symmetric
    # downsampling padding, [cos, sin] embedding without the shift, eps 1e-5,
    # one block per level, cosine β without clipping, σ² = β̃.
    "gray_variant": (dict(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                          layers_per_block=1, down_block_types=("AttnDownBlock2D", "AttnDownBlock2D"),
                          up_block_types=("AttnUpBlock2D", "AttnUpBlock2D"), downsample_padding=1,
                          flip_sin_to_cos=True, freq_shift=0, norm_eps=1e-5, norm_num_groups=8,
                          attention_head_dim=None),
                     dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                          variance_type="fixed_small")),
}


def randomize(unet, generator):
    """Every parameter random, norms included: a swapped tensor changes the output."""
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(fan_in))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=generator))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))


def ddim_loop(unet, ddim, x, dtype):
    """DDIMPipeline's loop (scheduler.step as the pipeline calls it, use_clipped_model_output None)."""
    unet = copy.deepcopy(unet).to(dtype)
    ddim.set_timesteps(10)
    ddim.alphas_cumprod = ddim.alphas_cumprod.to(dtype)
    ddim.final_alpha_cumprod = torch.as_tensor(ddim.final_alpha_cumprod, dtype=dtype)
    x = x.to(dtype)
    with torch.no_grad():
        for t in ddim.timesteps:
            x = ddim.step(unet(x, t).sample, t, x, eta=0.0, use_clipped_model_output=None).prev_sample
    return x


def ddim_reference(unet, scheduler_config, shape):
    ddim = DDIMScheduler.from_config(scheduler_config)
    pipeline = DDIMPipeline(unet=unet, scheduler=ddim)
    pipeline.set_progress_bar_config(disable=True)
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    image = pipeline(batch_size=shape[0], generator=torch.Generator().manual_seed(0), eta=0.0,
                     num_inference_steps=10, output_type="np").images
    # The pipeline's loop once more, keeping x0 before its postprocessing.
    x = ddim_loop(unet, DDIMScheduler.from_config(scheduler_config), x_T, torch.float32)
    again = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert abs(again - image).max() < 1e-6, "the DDIM loop differs from DDIMPipeline's"
    x64 = ddim_loop(unet, DDIMScheduler.from_config(scheduler_config), x_T, torch.float64)
    return x_T, torch.from_numpy(image).contiguous(), x, x64


def record(folder):
    """diffusers' outputs of the DDPMPipeline folder `folder` (a fixture, or one downloaded elsewhere)."""
    unet = UNet2DModel.from_pretrained(os.path.join(folder, "unet")).eval()
    scheduler = DDPMScheduler.from_pretrained(os.path.join(folder, "scheduler"))
    c, s = unet.config.in_channels, unet.config.sample_size
    x = torch.randn((4, c, s, s), generator=torch.Generator().manual_seed(5678))
    t = torch.tensor([0, 10, 500, 999])
    with torch.no_grad():
        eps = unet(x, t).sample
    x_T, image, x0, x0_64 = ddim_reference(unet, scheduler.config, (2, c, s, s))
    variance = torch.stack([scheduler._get_variance(int(k)) for k in range(scheduler.config.num_train_timesteps)])
    save_file({"x": x, "t": t, "eps": eps, "ddim_x_T": x_T, "ddim_image": image, "ddim_x0": x0,
               "ddim_x0_float64": x0_64,
               "alphas_cumprod": scheduler.alphas_cumprod.double(), "ddpm_variance": variance.double()},
              os.path.join(folder, "reference.safetensors"))
    print(f"wrote {folder}/reference.safetensors: {sum(p.numel() for p in unet.parameters())} parameters")


def save_random(folder, unet_config, scheduler_config):
    unet = UNet2DModel(**unet_config).eval()
    randomize(unet, torch.Generator().manual_seed(1234))
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**scheduler_config)).save_pretrained(folder, safe_serialization=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", help="save a random-weight network of google/ddpm-cifar10-32's config here "
                                       "(and its reference.safetensors)")
    parser.add_argument("--record", help="only record reference.safetensors of this DDPMPipeline folder "
                                         "(e.g. google/ddpm-cifar10-32 downloaded elsewhere)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.record:
        record(args.record)
    elif args.full:
        save_random(args.full, CIFAR10_32, CIFAR10_32_SCHEDULER)
        record(args.full)
    else:
        for case, (unet_config, scheduler_config) in CASES.items():
            folder = os.path.join(HERE, "diffusers_fixtures", case)
            save_random(folder, unet_config, scheduler_config)
            record(folder)
