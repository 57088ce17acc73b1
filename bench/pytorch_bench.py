"""The Python PyTorch twin of genfw_bench (bench/run.py drives both; see bench/README.md).

Reads the resolved experiment TOML that genfw_bench wrote (every default filled in)
and runs the same model architecture, loss, optimizer and sampler in plain PyTorch,
the way a researcher's script would: batches indexed from the dataset held in memory,
losses kept on device and read every log_every steps, sampling under inference_mode.
One measurement per process, one JSON object on stdout.

  pytorch_bench.py train  RESOLVED.toml --expect-params N [--block K] [--reps R]
  pytorch_bench.py sample RESOLVED.toml --expect-params N [--reps R]
  pytorch_bench.py gemm [--n N] [--reps R]

Common: --device cpu|cuda, --precision fp32|tf32|bf16 (as genfw's precision setting:
TF32 switches on CUDA, bf16 autocast around forward passes), --compile none|default|
max-autotune (PyTorch 2.x: torch.compile of the loss or of the network call; the
warm-up block that compiles is reported as compile_s, apart from the step times).
"""
import argparse
import contextlib
import gzip
import json
import math
import os
import resource
import statistics
import sys
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- shared pieces (genfw: framework/src/nn.cpp, schedules.cpp) -----------------------------

def sinusoidal_embedding(values, dim, max_period=10000.0):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=values.device) / half)
    args = values.float().unsqueeze(1) * freqs.unsqueeze(0)
    emb = torch.cat([torch.sin(args), torch.cos(args)], 1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


def geometric_sigmas(begin, end, levels):
    if levels == 1:
        return torch.full((1,), begin, dtype=torch.float64)
    return torch.exp(torch.linspace(math.log(begin), math.log(end), levels, dtype=torch.float64))


def make_activation(name):
    return {"silu": nn.SiLU, "relu": nn.ReLU, "elu": nn.ELU, "softplus": nn.Softplus, "tanh": nn.Tanh,
            "leaky_relu": lambda: nn.LeakyReLU(0.2)}[name]()


def linear_alphas_cumprod(o):
    assert o["beta_schedule"] == "linear", "bench: only the linear β schedule is ported"
    betas = torch.linspace(o["beta_start"], o["beta_end"], o["num_train_timesteps"], dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


def per_sample(c, like):
    return c.to(like.dtype).reshape([like.shape[0]] + [1] * (like.dim() - 1))


# ---- score_mlp (plugins/model/score_mlp) -----------------------------------------------------

class ScoreMlp(nn.Module):
    def __init__(self, o, dim):
        super().__init__()
        self.embedding_dim = o["embedding_dim"]
        layers, width = [], dim + self.embedding_dim
        for _ in range(o["layers"]):
            layers += [nn.Linear(width, o["hidden"]), make_activation(o["activation"])]
            width = o["hidden"]
        self.net = nn.Sequential(*layers, nn.Linear(width, dim))
        self.levels = geometric_sigmas(o["sigma_begin"], o["sigma_end"], o["num_levels"])

    def score(self, x, sigma):
        n = x.shape[0]
        s = sigma.reshape(-1).expand(n).to(x.device, x.dtype)
        emb = sinusoidal_embedding(s.log(), self.embedding_dim).to(x.dtype)
        out = self.net(torch.cat([x.reshape(n, -1), emb], 1))
        return (out / s.unsqueeze(1)).reshape(x.shape)


# ---- ncsn (plugins/model/ncsn: CondRefineNetDilated, Song & Ermon 2019) ----------------------

def conv3x3(i, o, bias, dilation=1):
    return nn.Conv2d(i, o, 3, padding=dilation, dilation=dilation, bias=bias)


class CondInstanceNormPlus(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.embed = nn.Embedding(classes, 3 * features)
        with torch.no_grad():
            self.embed.weight[:, :2 * features].normal_(1.0, 0.02)
            self.embed.weight[:, 2 * features:].zero_()

    def forward(self, x, y):
        means = x.mean((2, 3))
        m = means.mean(-1, keepdim=True)
        v = means.var(-1, unbiased=True, keepdim=True)
        means = (means - m) / torch.sqrt(v + 1e-5)
        mu = x.mean((2, 3), keepdim=True)
        var = x.var((2, 3), unbiased=False, keepdim=True)
        h = (x - mu) / torch.sqrt(var + 1e-5)
        gamma, alpha, beta = (p[..., None, None] for p in self.embed(y).chunk(3, -1))
        h = h + means[..., None, None] * alpha
        return gamma * h + beta


class CondResBlock(nn.Module):
    def __init__(self, i, o, classes, down, dilation):
        super().__init__()
        mid = i if down else o
        self.pool = down and dilation == 1
        self.norm1, self.conv1 = CondInstanceNormPlus(i, classes), conv3x3(i, mid, True, dilation)
        self.norm2, self.conv2 = CondInstanceNormPlus(mid, classes), conv3x3(mid, o, True, dilation)
        self.shortcut = None
        if i != o or down:
            self.shortcut = conv3x3(i, o, True, dilation) if dilation > 1 else nn.Conv2d(i, o, 1)

    def forward(self, x, y):
        h = self.conv1(F.elu(self.norm1(x, y)))
        h = self.conv2(F.elu(self.norm2(h, y)))
        skip = self.shortcut(x) if self.shortcut is not None else x
        if self.pool:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return skip + h


class CondRcuBlock(nn.Module):
    def __init__(self, features, blocks, stages, classes):
        super().__init__()
        self.units = nn.ModuleList(
            nn.ModuleList(nn.ModuleList([CondInstanceNormPlus(features, classes), conv3x3(features, features, False)])
                          for _ in range(stages)) for _ in range(blocks))

    def forward(self, x, y):
        for block in self.units:
            residual = x
            for norm, conv in block:
                x = conv(F.elu(norm(x, y)))
            x = x + residual
        return x


class CondMsfBlock(nn.Module):
    def __init__(self, in_planes, features, classes):
        super().__init__()
        self.norms = nn.ModuleList(CondInstanceNormPlus(p, classes) for p in in_planes)
        self.convs = nn.ModuleList(conv3x3(p, features, True) for p in in_planes)

    def forward(self, xs, y, size):
        total = None
        for x, norm, conv in zip(xs, self.norms, self.convs):
            h = F.interpolate(conv(norm(x, y)), size=size, mode="bilinear", align_corners=True)
            total = h if total is None else total + h
        return total


class CondCrpBlock(nn.Module):
    def __init__(self, features, stages, classes):
        super().__init__()
        self.norms = nn.ModuleList(CondInstanceNormPlus(features, classes) for _ in range(stages))
        self.convs = nn.ModuleList(conv3x3(features, features, False) for _ in range(stages))

    def forward(self, x, y):
        x = F.elu(x)
        path = x
        for norm, conv in zip(self.norms, self.convs):
            path = conv(F.avg_pool2d(norm(path, y), 5, 1, 2))
            x = path + x
        return x


class CondRefineBlock(nn.Module):
    def __init__(self, in_planes, features, classes, end):
        super().__init__()
        self.adapt = nn.ModuleList(CondRcuBlock(p, 2, 2, classes) for p in in_planes)
        self.msf = CondMsfBlock(in_planes, features, classes) if len(in_planes) > 1 else None
        self.crp = CondCrpBlock(features, 2, classes)
        self.output = CondRcuBlock(features, 3 if end else 1, 2, classes)

    def forward(self, xs, y, size):
        hs = [a(x, y) for a, x in zip(self.adapt, xs)]
        h = self.msf(hs, y, size) if self.msf is not None else hs[0]
        return self.output(self.crp(h, y), y)


class Ncsn(nn.Module):
    def __init__(self, o, info):
        super().__init__()
        channels = info["shape"][0]
        self.low, self.high, self.scale_by_sigma = info["low"], info["high"], o["scale_by_sigma"]
        self.levels = geometric_sigmas(o["sigma_begin"], o["sigma_end"], o["num_levels"])
        ngf, classes = o["ngf"], o["num_levels"]
        self.begin_conv = conv3x3(channels, ngf, True)
        self.res = nn.ModuleList([
            CondResBlock(ngf, ngf, classes, False, 1), CondResBlock(ngf, ngf, classes, False, 1),
            CondResBlock(ngf, 2 * ngf, classes, True, 1), CondResBlock(2 * ngf, 2 * ngf, classes, False, 1),
            CondResBlock(2 * ngf, 2 * ngf, classes, True, 2), CondResBlock(2 * ngf, 2 * ngf, classes, False, 2),
            CondResBlock(2 * ngf, 2 * ngf, classes, True, 4), CondResBlock(2 * ngf, 2 * ngf, classes, False, 4)])
        self.refine = nn.ModuleList([
            CondRefineBlock([2 * ngf], 2 * ngf, classes, False),
            CondRefineBlock([2 * ngf, 2 * ngf], 2 * ngf, classes, False),
            CondRefineBlock([2 * ngf, 2 * ngf], ngf, classes, False),
            CondRefineBlock([ngf, ngf], ngf, classes, True)])
        self.normalizer = CondInstanceNormPlus(ngf, classes)
        self.end_conv = conv3x3(ngf, channels, True)
        self.log_levels = None

    def score(self, x, sigma):
        n = x.shape[0]
        s = sigma.reshape(-1).expand(n)
        if self.log_levels is None or self.log_levels.device != x.device:
            self.log_levels = self.levels.log().to(x.device)
        index = (self.log_levels[None] - s.double().log()[:, None]).abs().argmin(1)
        out = self.network(x, index)
        return out / per_sample(s, out) if self.scale_by_sigma else out

    def network(self, x, y):
        h = self.begin_conv(2.0 * (x - self.low) / (self.high - self.low) - 1.0)
        layers = []
        for i, block in enumerate(self.res):
            h = block(h, y)
            if i % 2 == 1:
                layers.append(h)
        size = lambda t: list(t.shape[2:])  # noqa: E731
        ref = self.refine[0]([layers[3]], y, size(layers[3]))
        ref = self.refine[1]([layers[2], ref], y, size(layers[2]))
        ref = self.refine[2]([layers[1], ref], y, size(layers[1]))
        ref = self.refine[3]([layers[0], ref], y, size(layers[0]))
        return self.end_conv(F.elu(self.normalizer(ref, y)))


# ---- ddpm_unet (plugins/model/ddpm_unet: Ho et al. 2020) -------------------------------------

def norm_groups(c):
    return math.gcd(math.gcd(32, max(1, c // 4)), c)


def make_norm(c):
    return nn.GroupNorm(norm_groups(c), c, eps=1e-6)


def zero_init(layer):
    with torch.no_grad():
        layer.weight.zero_()
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


class ResBlock(nn.Module):
    def __init__(self, i, o, temb, dropout):
        super().__init__()
        self.norm1, self.conv1 = make_norm(i), nn.Conv2d(i, o, 3, padding=1)
        self.temb_proj = nn.Linear(temb, o)
        self.norm2, self.dropout = make_norm(o), nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(o, o, 3, padding=1))
        self.nin_shortcut = nn.Conv2d(i, o, 1) if i != o else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (self.nin_shortcut(x) if self.nin_shortcut is not None else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = make_norm(c)
        self.q, self.k, self.v = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.proj_out = zero_init(nn.Conv2d(c, c, 1))

    def forward(self, x):
        b, c, hw = x.shape[0], x.shape[1], x.shape[2] * x.shape[3]
        h = self.norm(x)
        q, k, v = (f(h).reshape(b, c, hw) for f in (self.q, self.k, self.v))
        w = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), 2)
        return x + self.proj_out(torch.bmm(v, w.transpose(1, 2)).reshape(x.shape))


class DdpmUnet(nn.Module):
    def __init__(self, o, info):
        super().__init__()
        assert o["num_classes"] == 0 and o["prediction_type"] == "epsilon", "bench: unconditional ε-models only"
        ch, mult, blocks, attn, dropout = o["ch"], o["ch_mult"], o["num_res_blocks"], o["attn_resolutions"], o["dropout"]
        in_ch, temb = info["shape"][0], 4 * o["ch"]
        self.ch, self.blocks, self.levels = ch, blocks, len(mult)
        self.alphas_cumprod = linear_alphas_cumprod(o)
        self.temb_dense0, self.temb_dense1 = nn.Linear(ch, temb), nn.Linear(temb, temb)
        self.conv_in = nn.Conv2d(in_ch, ch, 3, padding=1)
        self.down, self.down_attn, self.downsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        skip, channels, res, level_res = [ch], ch, info["shape"][1], []
        for level, m in enumerate(mult):
            level_res.append(res)
            for _ in range(blocks):
                self.down.append(ResBlock(channels, ch * m, temb, dropout))
                self.down_attn.append(AttnBlock(ch * m) if res in attn else nn.Identity())
                channels = ch * m
                skip.append(channels)
            if level + 1 < len(mult):
                self.downsample.append(nn.Conv2d(channels, channels, 3, stride=2, padding=1))
                skip.append(channels)
                res = (res + 1) // 2
        self.mid_block1 = ResBlock(channels, channels, temb, dropout)
        self.mid_attn = AttnBlock(channels)
        self.mid_block2 = ResBlock(channels, channels, temb, dropout)
        self.up, self.up_attn, self.upsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(mult))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(channels + skip.pop(), ch * mult[level], temb, dropout))
                self.up_attn.append(AttnBlock(ch * mult[level]) if level_res[level] in attn else nn.Identity())
                channels = ch * mult[level]
            if level > 0:
                self.upsample.append(nn.Conv2d(channels, channels, 3, padding=1))
        self.norm_out = make_norm(channels)
        self.conv_out = zero_init(nn.Conv2d(channels, in_ch, 3, padding=1))

    def predict(self, x, t):
        temb = sinusoidal_embedding(t, self.ch).to(x.dtype)
        temb = self.temb_dense1(F.silu(self.temb_dense0(temb)))
        hs, block = [self.conv_in(x)], 0
        for level in range(self.levels):
            for _ in range(self.blocks):
                hs.append(self.down_attn[block](self.down[block](hs[-1], temb)))
                block += 1
            if level + 1 < self.levels:
                hs.append(self.downsample[level](hs[-1]))
        h = self.mid_block2(self.mid_attn(self.mid_block1(hs[-1], temb)), temb)
        block, up = 0, 0
        for level in reversed(range(self.levels)):
            for _ in range(self.blocks + 1):
                h = self.up_attn[block](self.up[block](torch.cat([h, hs.pop()], 1), temb))
                block += 1
            if level > 0:
                h = self.upsample[up](F.interpolate(h, size=list(hs[-1].shape[2:]), mode="nearest"))
                up += 1
        return self.conv_out(F.silu(self.norm_out(h)))


# ---- data (plugins/dataset/*: the same files, held in memory, indexed per batch) -------------

class InMemoryData:
    def __init__(self, d, seed):
        plugin = d["plugin"]
        self.low, self.high = (0.0, 1.0) if d.get("range") == "zero_one" else (-1.0, 1.0)
        self.pad = False
        if plugin == "toy2d":
            assert d["distribution"] == "gmm", "bench: toy2d gmm only"
            g = torch.Generator().manual_seed(d["seed"])
            means = torch.tensor(d["means"], dtype=torch.float64)
            weights = torch.tensor(d["weights"], dtype=torch.float64)
            stds = torch.tensor(d["stds"] * (len(d["means"]) if len(d["stds"]) == 1 else 1), dtype=torch.float64)
            k = torch.multinomial(weights, d["size"], True, generator=g)
            self.x = (means[k] + stds[k, None] * torch.randn(d["size"], means.shape[1], generator=g,
                                                             dtype=torch.float64)).float()
            bound = math.ceil(max(float((means.abs().amax(1) + 6 * stds).max()), float(self.x.abs().max())))
            self.low, self.high, self.shape = -bound, bound, [means.shape[1]]
        elif plugin == "fashion_mnist":
            with gzip.open(os.path.join(d["path"], "train-images-idx3-ubyte.gz"), "rb") as f:
                raw = f.read()
            n = int.from_bytes(raw[4:8], "big")
            self.x = torch.frombuffer(bytearray(raw[16:16 + n * 784]), dtype=torch.uint8).reshape(n, 1, 28, 28)
            if d["subset"] > 0:
                self.x = self.x[:d["subset"]].clone()
            self.pad = d["pad_to_32"]
            self.shape = [1, 32, 32] if self.pad else [1, 28, 28]
        elif plugin == "cifar10":
            parts = []
            for i in range(1, 6):
                with open(os.path.join(d["path"], f"data_batch_{i}.bin"), "rb") as f:
                    parts.append(torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).reshape(-1, 3073))
            self.x = torch.cat(parts)[:, 1:].reshape(-1, 3, 32, 32).clone()
            self.shape = [3, 32, 32]
        else:
            raise SystemExit(f"pytorch_bench: no port of dataset '{plugin}'")
        self.size, self.seed = self.x.shape[0], seed

    def info(self):
        return {"shape": self.shape, "low": self.low, "high": self.high}

    def batch(self, step, batch_size):
        """Consecutive slices of a per-epoch permutation (as genfw's trainer)."""
        epoch, offset = divmod(step * batch_size, self.size)
        if getattr(self, "_epoch", None) != epoch:
            self._perm = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1000003 + epoch + 1))
            self._epoch = epoch
        index = self._perm[offset:offset + batch_size]
        if index.numel() < batch_size:  # wraps into the next epoch
            index = torch.cat([index, torch.randperm(self.size)[:batch_size - index.numel()]])
        x = self.x.index_select(0, index)
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0).mul_(self.high - self.low).add_(self.low)
            if self.pad:
                x = F.pad(x, (2, 2, 2, 2), value=self.low)
        return x.contiguous()


def build_model(cfg, info):
    o, plugin = cfg["model"], cfg["model"]["plugin"]
    if plugin == "score_mlp":
        return ScoreMlp(o, math.prod(info["shape"]))
    if plugin == "ncsn":
        return Ncsn(o, info)
    if plugin == "ddpm_unet":
        return DdpmUnet(o, info)
    raise SystemExit(f"pytorch_bench: no port of model '{plugin}'")


# ---- objectives (plugins/objective/dsm, ddpm) ------------------------------------------------

def make_loss(cfg, model, device):
    o = cfg["objective"]
    if o["plugin"] == "dsm":  # Song & Ermon 2019, eq. 5-6
        levels = (torch.tensor(o["sigmas"], dtype=torch.float64) if o["sigmas"] else model.levels).to(device, torch.float32)

        def dsm(x):
            n = x.shape[0]
            sigma = levels[torch.randint(levels.shape[0], (n,), device=device)]
            z, sigma_x = torch.randn_like(x), per_sample(sigma, x)
            s = model.score(x + sigma_x * z, sigma)
            return (0.5 * (s + z / sigma_x).pow(2).reshape(n, -1).sum(1) * sigma.pow(o["anneal_power"])).mean()
        return dsm
    if o["plugin"] == "ddpm":  # Ho et al. 2020, Alg. 1
        abar = model.alphas_cumprod.to(device, torch.float32)

        def ddpm(x0):
            t = torch.randint(abar.shape[0], (x0.shape[0],), device=device)
            a, eps = per_sample(abar[t], x0), torch.randn_like(x0)
            return F.mse_loss(model.predict(a.sqrt() * x0 + (1 - a).sqrt() * eps, t), eps)
        return ddpm
    raise SystemExit(f"pytorch_bench: no port of objective '{o['plugin']}'")


# ---- samplers (plugins/sampler/annealed_langevin, ddim) --------------------------------------

def annealed_langevin(model, o, n, info, device):  # Song & Ermon 2019, Alg. 1
    sigmas = o["sigmas"] or model.levels.tolist()
    shape = [n] + info["shape"]
    if o["init"] == "uniform":
        x = info["low"] + (info["high"] - info["low"]) * torch.rand(shape, device=device)
    else:
        x = o["init_scale"] * torch.randn(shape, device=device)
    nfe = 0
    for sigma in sigmas:
        alpha = o["step_size"] * (sigma / sigmas[-1]) ** 2
        sigma_batch = torch.full((n,), sigma, device=device)
        for _ in range(o["steps_per_level"]):
            s = model.score(x, sigma_batch)
            x = x + 0.5 * alpha * s + math.sqrt(alpha) * torch.randn_like(x)
            nfe += 1
    if o["denoise"]:
        x = x + sigmas[-1] ** 2 * model.score(x, torch.full((n,), sigmas[-1], device=device))
        nfe += 1
    return x, nfe


def ddim(model, o, n, info, device):  # Song et al. 2021, eq. 12 (η = 0, "leading" spacing)
    assert o["eta"] == 0 and o["timestep_spacing"] == "leading" and o["guidance_scale"] == 0, "bench: plain DDIM only"
    abar = model.alphas_cumprod.tolist()
    train_steps, steps = len(abar), o["num_inference_steps"]
    tau = [i * (train_steps // steps) + o["steps_offset"] for i in reversed(range(steps))]
    final = 1.0 if o["set_alpha_to_one"] else abar[0]
    x = torch.randn([n] + info["shape"], device=device)
    for i, t in enumerate(tau):
        a_from, a_to = abar[t], (abar[tau[i + 1]] if i + 1 < len(tau) else final)
        eps = model.predict(x, torch.full((n,), t, dtype=torch.long, device=device))
        x0 = (x - math.sqrt(1 - a_from) * eps) / math.sqrt(a_from)
        if o["clip_sample"]:
            x0 = x0.clamp(info["low"], info["high"])
            eps = (x - math.sqrt(a_from) * x0) / math.sqrt(1 - a_from)
        x = math.sqrt(a_to) * x0 + math.sqrt(max(0.0, 1 - a_to)) * eps
    return x, len(tau)


# ---- measurements ----------------------------------------------------------------------------

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def count_flops(model, cfg, info, batch_size, device):
    """Forward FLOPs (2 per multiply-add) of convolutions, linear layers and the attention
    products, counted by hooks on one forward pass at `batch_size`."""
    total = [0]

    def conv(m, inputs, out):
        total[0] += 2 * out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, inputs, out):
        total[0] += 2 * out.numel() * m.in_features

    def attn(m, inputs, out):
        b, c, hw = inputs[0].shape[0], inputs[0].shape[1], inputs[0].shape[2] * inputs[0].shape[3]
        total[0] += 2 * (2 * b * hw * hw * c)  # q^T k and v w^T

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
        elif isinstance(m, AttnBlock):
            hooks.append(m.register_forward_hook(attn))
    with torch.inference_mode():
        x = torch.zeros([batch_size] + info["shape"], device=device)
        if hasattr(model, "predict"):
            model.predict(x, torch.zeros(batch_size, dtype=torch.long, device=device))
        else:
            model.score(x, torch.ones(batch_size, device=device))
    for h in hooks:
        h.remove()
    return total[0]


def set_precision(args, device):
    """genfw's precision setting (framework/host/include/genfw/precision.hpp): on CUDA the
    TF32 switches on for "tf32" and off otherwise; bf16 autocast around forward passes."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    if args.precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


def compiled(function, args):
    if args.compile == "none":
        return function
    if not hasattr(torch, "compile"):
        raise SystemExit(f"pytorch_bench: --compile needs PyTorch 2.x (this is {torch.__version__})")
    return torch.compile(function, mode=None if args.compile == "default" else args.compile)


def peak_device_mib(device):
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None


def setup(args):
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    device = torch.device(args.device)
    torch.manual_seed(cfg["seed"])
    data = InMemoryData(cfg["data"], cfg["seed"])
    info = data.info()
    model = build_model(cfg, info).to(device)
    params = sum(p.numel() for p in model.parameters())
    print(f"parameters: python {params}, genfw {args.expect_params}", file=sys.stderr)
    if args.expect_params and params != args.expect_params:
        raise SystemExit(f"pytorch_bench: {cfg['model']['plugin']} has {params} parameters in Python but "
                         f"{args.expect_params} in genfw: the architectures differ")
    return cfg, device, data, info, model, params


def train(args):
    cfg, device, data, info, model, params = setup(args)
    t = cfg["train"]
    assert t["optimizer"] == "adam", "bench: adam only"
    loss_fn = compiled(make_loss(cfg, model, device), args)
    precision = set_precision(args, device)
    parameters = list(model.parameters())
    opt = torch.optim.Adam(parameters, lr=t["lr"], betas=tuple(t["betas"]), weight_decay=t["weight_decay"])
    shadow = [p.detach().clone() for p in parameters] if t["ema_decay"] > 0 else None
    batch_size, pending, losses = t["batch_size"], [], []
    model.train()

    def step(i):
        x = data.batch(i, batch_size).to(device)
        opt.zero_grad()
        with precision():
            loss = loss_fn(x)
        loss.backward()
        if t["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(parameters, t["grad_clip"])
        if t["warmup_steps"] > 0:
            for g in opt.param_groups:
                g["lr"] = t["lr"] * min(1.0, (i + 1) / t["warmup_steps"])
        opt.step()
        if shadow is not None:
            with torch.no_grad():
                for s, p in zip(shadow, parameters):
                    s.mul_(t["ema_decay"]).add_(p, alpha=1 - t["ema_decay"])
        pending.append(loss.detach())
        if (i + 1) % args.block == 0:  # the host reads the losses once per block (= log_every)
            losses.extend(torch.stack(pending).tolist())
            pending.clear()

    blocks, i = [], 0
    for r in range(args.reps + 1):  # r = 0: warm-up (and compilation)
        sync(device)
        start = time.perf_counter()
        for _ in range(args.block):
            step(i)
            i += 1
        sync(device)
        blocks.append((time.perf_counter() - start) / args.block)
    warmup, blocks = blocks[0], blocks[1:]
    assert all(math.isfinite(v) for v in losses), "pytorch_bench: non-finite loss"
    flops = count_flops(model, cfg, info, batch_size, device)
    return {"mode": "train", "parameters": params, "batch_size": batch_size, "block": args.block,
            "step_s": statistics.median(blocks), "blocks": blocks, "train_flops": 3 * flops,
            "compile_s": max(0.0, (warmup - statistics.median(blocks)) * args.block) if args.compile != "none" else 0.0,
            "peak_device_mib": peak_device_mib(device)}


def sample(args):
    cfg, device, data, info, model, params = setup(args)
    o, n = cfg["sampler"], cfg["sampler"]["batch_size"]
    sampler = {"annealed_langevin": annealed_langevin, "ddim": ddim}.get(o["plugin"])
    if sampler is None:
        raise SystemExit(f"pytorch_bench: no port of sampler '{o['plugin']}'")
    model.eval()
    for method in ("score", "predict"):
        if hasattr(model, method):
            setattr(model, method, compiled(getattr(model, method), args))
    precision = set_precision(args, device)
    times, finite, nfe = [], True, 0
    for r in range(args.reps + 1):  # r = 0: warm-up (and compilation)
        sync(device)
        start = time.perf_counter()
        with torch.inference_mode(), precision():
            x, nfe = sampler(model, o, n, info, device)
        x = x.float().cpu()
        times.append(time.perf_counter() - start)
        finite = finite and bool(torch.isfinite(x).all())
    warmup, times = times[0], times[1:]
    return {"mode": "sample", "parameters": params, "num_samples": n, "nfe": nfe,
            "sample_s": statistics.median(times), "runs": times, "finite": finite,
            "compile_s": max(0.0, warmup - statistics.median(times)) if args.compile != "none" else 0.0,
            "peak_device_mib": peak_device_mib(device)}


def gemm(args):
    device = torch.device(args.device)
    a, b = torch.randn(args.n, args.n, device=device), torch.randn(args.n, args.n, device=device)
    times = []
    for r in range(args.reps + 2):  # two warm-up products
        sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        if r >= 2:
            times.append(time.perf_counter() - start)
    t = statistics.median(times)
    return {"mode": "gemm", "n": args.n, "gemm_s": t, "gflops": 2 * args.n ** 3 / t / 1e9, "runs": times}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["train", "sample", "gemm"])
    p.add_argument("config", nargs="?", help="resolved experiment TOML written by genfw_bench --resolved")
    p.add_argument("--expect-params", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="0 = cores")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    p.add_argument("--compile", choices=["none", "default", "max-autotune"], default="none")
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--flush-denormal", action="store_true",
                   help="torch.set_flush_denormal(True) before any thread starts (genfw's default)")
    args = p.parse_args()
    if args.flush_denormal:
        torch.set_flush_denormal(True)  # worker threads created later inherit the FP environment
    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    result = {"train": train, "sample": sample, "gemm": gemm}[args.mode](args)
    result.update(threads=torch.get_num_threads(), device=args.device, torch=torch.__version__,
                  peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
