"""NCSN reference data for `runner import ncsn` (docs/import.md).

The network of Song & Ermon 2019 as the reference code trains and saves it:
`CondRefineNetDilated` of ermongroup/ncsn (models/cond_refinenet_dilated.py),
reconstructed here module for module under the reference's own parameter names
(that repository is GPL-3.0, so its source is not copied into genfw; this file
was written from reading it, and the test below checks that genfw's `ncsn`
plugin computes what this file computes). The checkpoint is written as
runners/anneal_runner.py writes `checkpoint.pth`: `torch.save([state_dict,
optimizer.state_dict()])` with the network wrapped in `nn.DataParallel`, so every
key starts with `module.`.

For each case, into ncsn_fixtures/<name>/:

  checkpoint.pth          the reference's checkpoint (random weights, every norm's embedding too)
  reference.safetensors
    x, labels, score      the network's output score = net(x, labels) on x in [0, 1], labels = noise-level indices
    sigmas                the reference's σ_i = exp(linspace(log σ_begin, log σ_end, L))

Cases: the CIFAR-10 layout (3×32×32) and the MNIST one (1×28×28, whose first
dilated block takes the reference's `adjust_padding` path), both narrow (ngf 4).
With --full DIR it instead saves a network of the CIFAR-10 config (ngf 128, 10
levels) with random weights into DIR, for timing an import. Nothing is downloaded.

Run after changing the cases (needs torch and safetensors), e.g.

    PYTHONPATH=build/pydeps build-pip/venv/bin/python plugins/model/ncsn/ncsn_reference.py

--check-original FILE loads each fixture's checkpoint into the original
CondRefineNetDilated (FILE: models/cond_refinenet_dilated.py of a clone of
ermongroup/ncsn) with strict=True and compares its output with the recorded one:
the reconstruction is the original (2026-12-08, ermongroup/ncsn 7f27f4a: identical,
difference 0.0, both cases).
"""
import argparse
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def conv3x3(cin, cout, bias=False, dilation=1):
    return nn.Conv2d(cin, cout, 3, stride=1, padding=dilation, dilation=dilation, bias=bias)


class CondInstanceNormPlus(nn.Module):
    """Eq. 13: γ·(instance_norm(x) + α·m̂) + β, m̂ = the channel means standardised over channels
    (unbiased variance, ε = 1e-5); γ, α, β = embed(level) in that order."""

    def __init__(self, features, classes):
        super().__init__()
        self.features = features
        self.instance_norm = nn.InstanceNorm2d(features, affine=False, track_running_stats=False)
        self.embed = nn.Embedding(classes, 3 * features)

    def forward(self, x, y):
        means = x.mean(dim=(2, 3))
        m = means.mean(dim=-1, keepdim=True)
        v = means.var(dim=-1, keepdim=True)
        means = (means - m) / torch.sqrt(v + 1e-5)
        h = self.instance_norm(x)
        gamma, alpha, beta = self.embed(y).chunk(3, dim=-1)
        h = h + means[..., None, None] * alpha[..., None, None]
        return gamma[..., None, None] * h + beta[..., None, None]


class ConvMeanPool(nn.Module):
    def __init__(self, cin, cout, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=1, padding=kernel_size // 2, bias=True)

    def forward(self, x):
        h = self.conv(x)
        return (h[:, :, ::2, ::2] + h[:, :, 1::2, ::2] + h[:, :, ::2, 1::2] + h[:, :, 1::2, 1::2]) / 4.0


class CondResBlock(nn.Module):
    """ConditionalResidualBlock: norm → ELU → conv → norm → ELU → conv, plus the shortcut."""

    def __init__(self, cin, cout, classes, down, dilation=None):
        super().__init__()
        self.cin, self.cout, self.down = cin, cout, down
        if down and dilation is not None:  # keeps the resolution (the reference's adjust_padding is unused here)
            self.conv1 = conv3x3(cin, cin, True, dilation)
            self.normalize2 = CondInstanceNormPlus(cin, classes)
            self.conv2 = conv3x3(cin, cout, True, dilation)
            self.shortcut = conv3x3(cin, cout, True, dilation)
        elif down:
            self.conv1 = conv3x3(cin, cin, True)
            self.normalize2 = CondInstanceNormPlus(cin, classes)
            self.conv2 = ConvMeanPool(cin, cout, 3)
            self.shortcut = ConvMeanPool(cin, cout, 1)
        else:
            d = dilation or 1
            self.conv1 = conv3x3(cin, cout, True, d)
            self.normalize2 = CondInstanceNormPlus(cout, classes)
            self.conv2 = conv3x3(cout, cout, True, d)
            if cin != cout:
                self.shortcut = conv3x3(cin, cout, True, d) if dilation else nn.Conv2d(cin, cout, 1)
        self.normalize1 = CondInstanceNormPlus(cin, classes)

    def forward(self, x, y):
        h = self.conv1(F.elu(self.normalize1(x, y)))
        h = self.conv2(F.elu(self.normalize2(h, y)))
        skip = x if (self.cin == self.cout and not self.down) else self.shortcut(x)
        return skip + h


class CondRCUBlock(nn.Module):
    def __init__(self, features, blocks, stages, classes):
        super().__init__()
        self.blocks, self.stages = blocks, stages
        for i in range(blocks):
            for j in range(stages):
                setattr(self, f"{i + 1}_{j + 1}_norm", CondInstanceNormPlus(features, classes))
                setattr(self, f"{i + 1}_{j + 1}_conv", conv3x3(features, features))

    def forward(self, x, y):
        for i in range(self.blocks):
            residual = x
            for j in range(self.stages):
                x = getattr(self, f"{i + 1}_{j + 1}_norm")(x, y)
                x = getattr(self, f"{i + 1}_{j + 1}_conv")(F.elu(x))
            x = x + residual
        return x


class CondMSFBlock(nn.Module):
    def __init__(self, in_planes, features, classes):
        super().__init__()
        self.convs = nn.ModuleList([conv3x3(c, features, True) for c in in_planes])
        self.norms = nn.ModuleList([CondInstanceNormPlus(c, classes) for c in in_planes])

    def forward(self, xs, y, shape):
        total = 0
        for x, norm, conv in zip(xs, self.norms, self.convs):
            total = total + F.interpolate(conv(norm(x, y)), size=shape, mode="bilinear", align_corners=True)
        return total


class CondCRPBlock(nn.Module):
    def __init__(self, features, stages, classes):
        super().__init__()
        self.convs = nn.ModuleList([conv3x3(features, features) for _ in range(stages)])
        self.norms = nn.ModuleList([CondInstanceNormPlus(features, classes) for _ in range(stages)])
        self.pool = nn.AvgPool2d(kernel_size=5, stride=1, padding=2)

    def forward(self, x, y):
        x = F.elu(x)
        path = x
        for norm, conv in zip(self.norms, self.convs):
            path = conv(self.pool(norm(path, y)))
            x = path + x
        return x


class CondRefineBlock(nn.Module):
    def __init__(self, in_planes, features, classes, end=False):
        super().__init__()
        self.adapt_convs = nn.ModuleList([CondRCUBlock(c, 2, 2, classes) for c in in_planes])
        self.output_convs = CondRCUBlock(features, 3 if end else 1, 2, classes)
        if len(in_planes) > 1:
            self.msf = CondMSFBlock(in_planes, features, classes)
        self.crp = CondCRPBlock(features, 2, classes)

    def forward(self, xs, y, shape):
        hs = [adapt(x, y) for adapt, x in zip(self.adapt_convs, xs)]
        h = self.msf(hs, y, shape) if len(hs) > 1 else hs[0]
        return self.output_convs(self.crp(h, y), y)


class CondRefineNetDilated(nn.Module):
    def __init__(self, channels, ngf, classes):
        super().__init__()
        self.begin_conv = nn.Conv2d(channels, ngf, 3, stride=1, padding=1)
        self.normalizer = CondInstanceNormPlus(ngf, classes)
        self.end_conv = nn.Conv2d(ngf, channels, 3, stride=1, padding=1)
        wide = 2 * ngf
        self.res1 = nn.ModuleList([CondResBlock(ngf, ngf, classes, False), CondResBlock(ngf, ngf, classes, False)])
        self.res2 = nn.ModuleList([CondResBlock(ngf, wide, classes, True), CondResBlock(wide, wide, classes, False)])
        self.res3 = nn.ModuleList([CondResBlock(wide, wide, classes, True, 2), CondResBlock(wide, wide, classes, False, 2)])
        self.res4 = nn.ModuleList([CondResBlock(wide, wide, classes, True, 4), CondResBlock(wide, wide, classes, False, 4)])
        self.refine1 = CondRefineBlock([wide], wide, classes)
        self.refine2 = CondRefineBlock([wide, wide], wide, classes)
        self.refine3 = CondRefineBlock([wide, wide], ngf, classes)
        self.refine4 = CondRefineBlock([ngf, ngf], ngf, classes, end=True)

    def forward(self, x, y):
        h = self.begin_conv(2 * x - 1.0)  # data in [0, 1], logit_transform false
        layers = []
        for res in (self.res1, self.res2, self.res3, self.res4):
            for block in res:
                h = block(h, y)
            layers.append(h)
        l1, l2, l3, l4 = layers
        r = self.refine1([l4], y, l4.shape[2:])
        r = self.refine2([l3, r], y, l3.shape[2:])
        r = self.refine3([l2, r], y, l2.shape[2:])
        r = self.refine4([l1, r], y, l1.shape[2:])
        return self.end_conv(F.elu(self.normalizer(r, y)))


def randomize(net, generator):
    """Every parameter random (the norms' embeddings too): a swapped tensor changes the output."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("embed.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=generator))
            elif p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))


def save_checkpoint(net, folder, optimizer_step):
    """As anneal_runner.py: [DataParallel state_dict, Adam state_dict] in torch.save's zip format,
    the optimizer after one step (moments and step counts in its state) when optimizer_step."""
    wrapped = nn.DataParallel(net)
    optimizer = torch.optim.Adam(wrapped.parameters(), lr=0.001, betas=(0.9, 0.999), amsgrad=False)
    if optimizer_step:
        for p in wrapped.parameters():
            p.grad = torch.full_like(p, 1e-3)
        optimizer.step()
    os.makedirs(folder, exist_ok=True)
    torch.save([wrapped.state_dict(), optimizer.state_dict()], os.path.join(folder, "checkpoint.pth"))


def sigmas(sigma_begin, sigma_end, levels):
    return torch.tensor(np.exp(np.linspace(np.log(sigma_begin), np.log(sigma_end), levels)))


CASES = {  # name: (channels, size, ngf, levels, optimizer_step)
    "cifar_like": (3, 32, 4, 10, False),
    "mnist_like": (1, 28, 4, 10, True),
}


def write_case(name, channels, size, ngf, levels, optimizer_step, folder):
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    net = CondRefineNetDilated(channels, ngf, levels)
    randomize(net, generator)
    net.eval()
    save_checkpoint(net, folder, optimizer_step)
    x = torch.rand(4, channels, size, size, generator=generator)
    labels = torch.tensor([0, 3, levels // 2, levels - 1])
    with torch.no_grad():
        score = net(x, labels)
    save_file({"x": x, "labels": labels, "score": score, "sigmas": sigmas(1.0, 0.01, levels)},
              os.path.join(folder, "reference.safetensors"))
    print(f"{name}: {sum(p.numel() for p in net.parameters())} parameters -> {folder}")


def check_original(path):
    """Each fixture through the original network, loaded strictly from its checkpoint."""
    import importlib.util
    import types

    from safetensors.torch import load_file

    spec = importlib.util.spec_from_file_location("cond_refinenet_dilated", path)
    original = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(original)
    for name, (channels, size, ngf, levels, _) in CASES.items():
        folder = os.path.join(HERE, "ncsn_fixtures", name)
        config = types.SimpleNamespace(
            data=types.SimpleNamespace(logit_transform=False, channels=channels, image_size=size),
            model=types.SimpleNamespace(ngf=ngf, num_classes=levels))
        net = original.CondRefineNetDilated(config)
        states = torch.load(os.path.join(folder, "checkpoint.pth"), map_location="cpu", weights_only=True)
        nn.DataParallel(net).load_state_dict(states[0], strict=True)
        net.eval()
        ref = load_file(os.path.join(folder, "reference.safetensors"))
        with torch.no_grad():
            out = net(ref["x"], ref["labels"])
        difference = ((out - ref["score"]).abs().max() / ref["score"].abs().max()).item()
        print(f"{name}: the original network vs the recorded output: max |difference| / max |output| = {difference}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", metavar="DIR", help="the CIFAR-10 config (ngf 128) with random weights, into DIR")
    parser.add_argument("--check-original", metavar="FILE", help="models/cond_refinenet_dilated.py of ermongroup/ncsn")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.check_original:
        check_original(args.check_original)
        return
    if args.full:
        write_case("cifar10_full", 3, 32, 128, 10, False, args.full)
        return
    for name, case in CASES.items():
        write_case(name, *case, os.path.join(HERE, "ncsn_fixtures", name))


if __name__ == "__main__":
    main()
