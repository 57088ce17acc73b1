#!/usr/bin/env python3
"""FID (and IS) with pytorch-fid's own preprocessing through the module that
tools/export_pytorch_fid.py writes, to check genfw's numbers against pytorch-fid's.

    python3 tools/fid_reference.py fid_inception.pt SAMPLES REFERENCE [--save-stats OUT.npz]
    python3 tools/fid_reference.py fid_inception.pt SAMPLES --save-stats samples.npz

SAMPLES and REFERENCE: a folder of images (PNG, JPEG, ...; read as pytorch-fid
does: PIL, converted to RGB), an .npy of uint8 images ([N,H,W], [N,H,W,C] or
[N,C,H,W], C = 1 or 3), a genfw run file (its /samples rounded to 8 bits as
genfw scores them), or an .npz of statistics (mu, sigma) saved by this script or
by pytorch-fid --save-stats. Images go to [0, 1], are resized bilinearly to
299x299 (align_corners=False), then mapped to [-1, 1]: pytorch-fid's
InceptionV3(resize_input=True, normalize_input=True). FID is pytorch-fid's
calculate_frechet_distance (scipy sqrtm, float64, covariance with N-1).

genfw's reference set: with `[features] max_reference = M` genfw scores not the whole
split but M of its N examples at the evenly strided indices round(linspace(0, N-1, M))
(so a class-ordered file is covered). `--reference-subset M` takes exactly those
examples of REFERENCE (given in the dataset's own order: e.g. CIFAR-10's train split
as data_batch_1..5 concatenated, Fashion-MNIST's as its IDX file), so this script
computes the reference genfw computes.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

IMAGE_EXTENSIONS = {"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"}  # pytorch-fid's


def uint8_to_nhwc_rgb(images: np.ndarray) -> np.ndarray:
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


def load_images(path: str) -> np.ndarray:
    """uint8 [N,H,W,3] from a folder of images, a uint8 .npy or a genfw run file."""
    if os.path.isdir(path):
        from PIL import Image
        files = sorted(f for f in os.listdir(path) if f.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS)
        if not files:
            sys.exit(f"{path}: no image files")
        return np.stack([np.asarray(Image.open(os.path.join(path, f)).convert("RGB")) for f in files])
    if path.endswith(".npy"):
        images = np.load(path)
        if images.dtype != np.uint8:
            sys.exit(f"{path}: dtype {images.dtype}, expected uint8 images")
        return uint8_to_nhwc_rgb(images)
    import h5py
    with h5py.File(path, "r") as f:
        samples = torch.from_numpy(f["samples"][()])
        low, high = float(f["samples"].attrs["low"]), float(f["samples"].attrs["high"])
    if samples.dim() != 4:
        sys.exit(f"{path}: /samples is not a batch of images")
    # genfw's to_8bit: the 8-bit file the sample stands for.
    levels = ((samples - low) / (high - low)).clamp(0, 1).mul(255).round().to(torch.uint8)
    return uint8_to_nhwc_rgb(levels.numpy())


def features(module, images: np.ndarray, batch_size: int):
    """pool3 features and logits (float64 numpy) of uint8 [N,H,W,3] images."""
    pool3, logits = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2).float().div(255)
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            p, l = module(2 * x - 1)
            pool3.append(p.double().numpy())
            logits.append(l.double().numpy())
    return np.concatenate(pool3), np.concatenate(logits)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():  # singular product: pytorch-fid's offset
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def inception_score(logits: np.ndarray, splits: int = 10):
    """Mean and std over splits of exp(E KL(p(y|x) || p(y))), as the original IS code."""
    p = torch.from_numpy(logits).softmax(1).numpy()
    scores = []
    for part in np.array_split(p, splits):
        kl = part * (np.log(part + 1e-12) - np.log(part.mean(0, keepdims=True) + 1e-12))
        scores.append(np.exp(kl.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def strided_subset(count: int, size: int) -> np.ndarray:
    """genfw's reference indices, round(linspace(0, size-1, count)) computed as LibTorch does: the
    first half of the points stepped up from 0, the second half down from size-1, then rounded half
    to even (numpy's linspace steps all from 0, and lands on other sides of .5)."""
    count = min(count, size)
    if count == 1:
        return np.zeros(1, np.int64)
    step = float(size - 1) / (count - 1)
    i = np.arange(count)
    points = np.where(i < count // 2, i * step, float(size - 1) - (count - 1 - i) * step)
    return np.round(points).astype(np.int64)


def statistics(module, path: str, batch_size: int, subset: int = 0):
    """(mu, sigma) of a set of images or a saved .npz, and its IS when images."""
    if path.endswith(".npz"):
        stats = np.load(path)
        return stats["mu"], stats["sigma"], None
    images = load_images(path)
    if subset:
        images = images[strided_subset(subset, len(images))]
    pool3, logits = features(module, images, batch_size)
    print(f"{path}: {len(pool3)} images")
    return pool3.mean(0), np.cov(pool3, rowvar=False), inception_score(logits)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module", help="TorchScript file from tools/export_pytorch_fid.py")
    parser.add_argument("inputs", nargs="+", help="SAMPLES [REFERENCE]")
    parser.add_argument("--save-stats", help="write the first input's mu and sigma to this .npz")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--reference-subset", type=int, default=0, metavar="M",
                        help="score only the M examples of REFERENCE that genfw's max_reference = M takes")
    args = parser.parse_args()
    if len(args.inputs) > 2:
        sys.exit("at most two inputs: SAMPLES [REFERENCE]")

    module = torch.jit.load(args.module).eval()
    if getattr(module, "genfw_source_weights_sha256", "") == "random":
        print("*** this module has RANDOM WEIGHTS (export test): its numbers mean nothing ***", file=sys.stderr)
    stats = [statistics(module, path, args.batch_size, args.reference_subset if i == 1 else 0)
             for i, path in enumerate(args.inputs)]
    if args.save_stats:
        np.savez_compressed(args.save_stats, mu=stats[0][0], sigma=stats[0][1])
        print(f"wrote {args.save_stats}")
    for path, (_, _, score) in zip(args.inputs, stats):
        if score is not None:
            print(f"IS  {score[0]:.4f} ± {score[1]:.4f}  (10 splits)  {path}")
    if len(stats) == 2:
        print(f"FID {frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1]):.4f}")


if __name__ == "__main__":
    main()
