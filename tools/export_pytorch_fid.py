#!/usr/bin/env python3
"""Export pytorch-fid's FID Inception-v3 to TorchScript for genfw's
`[features] extractor = "torchscript"`, so that FID, KID and IS are computed on
the network papers use.

    python3 tools/export_pytorch_fid.py --weights pt_inception-2015-12-05-6726825d.pth -o fid_inception.pt
    python3 tools/export_pytorch_fid.py --random-weights -o /tmp/random_inception.pt   # tests only

The weights: https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/
pt_inception-2015-12-05-6726825d.pth
(pytorch-fid's port of TensorFlow's 2015-12-05 Inception graph). Their file's
SHA-256 must start with 6726825d (torch.hub's convention: the hex part of the
file name is a prefix of the SHA-256); --allow-other-weights overrides.

The architecture is written out here (pytorch-fid's fid_inception_v3: torchvision's
Inception3 with the FIDInceptionA/C/E_1/E_2 patches, 1008-class fc, no aux head)
with the same parameter names, so the state dict loads with strict=True; neither
pytorch_fid nor torchvision is needed.

The module: forward(x: float32 [N,3,299,299] in [-1, 1]) -> (pool3 [N,2048],
logits [N,1008]). It does not resize or normalise: genfw does that before the
call (8-bit quantization, data range -> [-1, 1], bilinear resize to 299x299 with
align_corners=False, grayscale repeated to RGB), which equals pytorch-fid's
InceptionV3(resize_input=True, normalize_input=True) on [0, 1] images since
both maps are linear (checked at export). Any other input shape is an error.
The logits are pool3 . fc.weight^T without fc.bias: the original Inception
Score code (openai/improved-gan) and torch-fidelity's default use these.
genfw's config:

    [features]
    extractor = "torchscript"
    torchscript_path = "fid_inception.pt"
    resize = 299
    grayscale_to_rgb = true
    input_range = [-1.0, 1.0]

String attributes of the module (C++: module.attr("NAME").toStringRef()):
genfw_source_weights_sha256 (SHA-256 of the .pth file, "random" for
--random-weights), genfw_parameters_sha256 (below), genfw_input, genfw_outputs.

genfw_parameters_sha256, the canonical parameter digest: SHA-256 over every
entry of the module's state (parameters and buffers, BatchNorm's running_mean,
running_var and num_batches_tracked included), in the order of Python's
sorted() on their qualified names (e.g. "Conv2d_1a_3x3.bn.running_mean"; byte
order, the names being ASCII); each entry contributes
    name (UTF-8), b"\\0",
    dtype as str(t.dtype) without "torch." (e.g. "float32", "int64"), b"\\0",
    shape as decimal sizes joined by "," ("" for a 0-dim tensor), b"\\0",
    the raw bytes of t.detach().cpu().contiguous() in native (little-endian) order,
with no separator after the data. It is computed on the scripted module's
state_dict() (what C++ named_parameters()/named_buffers() see) and checked to
equal the digest of the nn.Module it was scripted from. The module is not
frozen: torch.jit.freeze would turn the parameters into constants and hide them
from that digest.
"""
import argparse
import hashlib
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from typing import Dict, Tuple

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
WEIGHTS_SHA256_PREFIX = "6726825d"
INPUT_DESCRIPTION = ("float32 [N,3,299,299] in [-1,1], bilinear-resized (align_corners=False), "
                     "grayscale repeated to RGB")
OUTPUTS_DESCRIPTION = "pool3 features [N,2048], logits [N,1008]"


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (TensorFlow's eps 0.001), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_options):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_options)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def tf_avg_pool(x: Tensor) -> Tensor:
    # TensorFlow's 3x3 average pool leaves the zero padding out of the average.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, self.branch_pool(tf_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a, unpatched)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), branch3x3dbl, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        branch7x7dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(branch7x7dbl))
        branch7x7dbl = self.branch7x7dbl_5(self.branch7x7dbl_4(branch7x7dbl))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, self.branch_pool(tf_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a, unpatched)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        branch7x7x3 = self.branch7x7x3_4(self.branch7x7x3_3(branch7x7x3))
        return torch.cat([branch3x3, branch7x7x3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class FIDInceptionE(nn.Module):
    """FIDInceptionE_1 (max_pool=False: TF average pool) and FIDInceptionE_2
    (max_pool=True: the FID graph's last block max-pools, unlike the paper)."""

    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's fid_inception_v3 (torchvision Inception3 names, aux head absent)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        if x.dim() != 4 or x.size(1) != 3 or x.size(2) != 299 or x.size(3) != 299:
            raise RuntimeError("FID Inception expects float32 [N,3,299,299] in [-1,1]; set [features] "
                               "resize = 299, grayscale_to_rgb = true, input_range = [-1.0, 1.0]")
        x = self.maxpool1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(x)))))
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        pool3 = torch.flatten(self.avgpool(x), 1)
        return pool3, pool3.mm(self.fc.weight.t())


def parameters_sha256(state: Dict[str, Tensor]) -> str:
    """The canonical parameter digest of the module docstring."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(str(tensor.dtype).replace("torch.", "", 1).encode() + b"\0")
        digest.update(",".join(str(size) for size in tensor.shape).encode() + b"\0")
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def randomize(net: FIDInceptionV3, seed: int) -> None:
    """Random weights whose activations neither vanish nor explode over 40 layers
    (He init; BatchNorm statistics away from 0/1), so the checks compare real numbers."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(1 + 0.1 * torch.randn(c, generator=generator))
                module.bias.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(c, generator=generator))
                module.num_batches_tracked.fill_(1)
        net.fc.bias.copy_(torch.randn(1008, generator=generator))


def build(args) -> Tuple[FIDInceptionV3, str]:
    """The network with its weights and the weights' SHA-256 ("random")."""
    net = FIDInceptionV3()
    if args.random_weights:
        print("*** RANDOM WEIGHTS: for testing the export only; its FID/IS mean nothing ***", file=sys.stderr)
        randomize(net, seed=0)
        source = "random"
    else:
        source = file_sha256(args.weights)
        if not source.startswith(WEIGHTS_SHA256_PREFIX):
            message = (f"{args.weights}: SHA-256 {source} does not start with {WEIGHTS_SHA256_PREFIX}, "
                       f"so it is not pytorch-fid's {WEIGHTS_URL}")
            if not args.allow_other_weights:
                sys.exit(message + " (--allow-other-weights to export it anyway)")
            print("warning: " + message, file=sys.stderr)
        net.load_state_dict(torch.load(args.weights, map_location="cpu"), strict=True)
    net.eval().requires_grad_(False)
    return net, source


def pytorch_fid_forward(net: FIDInceptionV3, images01: Tensor) -> Tuple[Tensor, Tensor]:
    """pytorch-fid's InceptionV3(resize_input=True, normalize_input=True) on [0, 1]
    images: resize first, then 2x - 1, then its four blocks; plus the logits."""
    x = F.interpolate(images01, size=(299, 299), mode="bilinear", align_corners=False)
    x = 2 * x - 1
    blocks = [
        nn.Sequential(net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(3, 2)),
        nn.Sequential(net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(3, 2)),
        nn.Sequential(net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a,
                      net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e),
        nn.Sequential(net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d((1, 1))),
    ]
    for block in blocks:
        x = block(x)
    pool3 = x.squeeze(3).squeeze(2)
    return pool3, pool3 @ net.fc.weight.T


def genfw_forward(module, images01: Tensor) -> Tuple[Tensor, Tensor]:
    """What genfw does: data range -> [-1, 1] first, then the resize, then the module."""
    x = F.interpolate(2 * images01 - 1, size=(299, 299), mode="bilinear", align_corners=False)
    return module(x)


def relative_error(a: Tensor, b: Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def check_equivalence(net: FIDInceptionV3, scripted) -> None:
    images01 = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference_pool3, reference_logits = pytorch_fid_forward(net, images01)
        pool3, logits = genfw_forward(scripted, images01)
    assert pool3.shape == (3, 2048) and logits.shape == (3, 1008), (pool3.shape, logits.shape)
    errors = relative_error(pool3, reference_pool3), relative_error(logits, reference_logits)
    print(f"vs pytorch-fid's forward (resize, then normalise) on [0,1] images: "
          f"max relative error pool3 {errors[0]:.2e}, logits {errors[1]:.2e} "
          f"(pool3 mean {float(reference_pool3.mean()):.4g}, std {float(reference_pool3.std()):.4g})")
    # float32 through ~100 layers; the resize/normalise order alone differs by rounding.
    assert max(errors) < 1e-4, errors


def check_saved(path: str, metadata: Dict[str, str]) -> None:
    loaded = torch.jit.load(path)
    for name, value in metadata.items():
        assert getattr(loaded, name) == value, (name, getattr(loaded, name), value)
    assert parameters_sha256(loaded.state_dict()) == metadata["genfw_parameters_sha256"]
    batch = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        loaded(batch)  # warm-up: the first call optimises the graph
        start = time.perf_counter()
        pool3, logits = loaded(batch)
        seconds = time.perf_counter() - start
    assert pool3.shape == (2, 2048) and logits.shape == (2, 1008) and pool3.dtype == torch.float32
    print(f"reloaded {path}: attributes and parameter digest match; "
          f"forward [2,3,299,299] in {seconds:.3f} s on CPU ({torch.get_num_threads()} threads)")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", help=f"pytorch-fid's state dict, from {WEIGHTS_URL}")
    source.add_argument("--random-weights", action="store_true",
                        help="random initialisation, FOR TESTING THE EXPORT ONLY")
    parser.add_argument("--allow-other-weights", action="store_true",
                        help=f"accept a .pth whose SHA-256 does not start with {WEIGHTS_SHA256_PREFIX}")
    parser.add_argument("-o", "--output", required=True, help="TorchScript file to write")
    args = parser.parse_args()
    if not args.random_weights and (args.weights is None or not os.path.isfile(args.weights)):
        sys.exit(f"{args.weights or '--weights'}: no such file; download pytorch-fid's weights from {WEIGHTS_URL}")

    net, source_sha256 = build(args)
    metadata = {
        "genfw_source_weights_sha256": source_sha256,
        "genfw_parameters_sha256": parameters_sha256(net.state_dict()),
        "genfw_input": INPUT_DESCRIPTION,
        "genfw_outputs": OUTPUTS_DESCRIPTION,
    }
    for name, value in metadata.items():
        setattr(net, name, value)
    # Scripted, not traced: the code is compiled, not recorded for one example
    # input, so the input check and any batch size survive, and the string
    # attributes become typed module attributes that C++ reads with attr().
    scripted = torch.jit.script(net)
    assert parameters_sha256(scripted.state_dict()) == metadata["genfw_parameters_sha256"]
    check_equivalence(net, scripted)
    scripted.save(args.output)
    check_saved(args.output, metadata)
    for name, value in metadata.items():
        print(f"{name} = {value}")


if __name__ == "__main__":
    main()
