#!/usr/bin/env python3
"""Paper-size models on one GPU: genfw against the PyTorch reference script (bench/gpu.md).

    python3 bench/gpu_bench.py --build DIR [--device cuda] [--out bench/gpu.md] [--dry-run]
                               [--main-job-steps N] [--fashion DIR]

Called by tools/gpu_check.sh after it built genfw against the machine's PyTorch.
For each family's CIFAR-10 experiment (experiments/*_cifar.toml, the papers'
sizes) it measures, each in its own process:
  * the training step (genfw_bench train --path runner: genfw::Trainer with the
    experiment's dataset and objective plugins) at fp32, tf32 and bf16
    (genfw's precision setting, genfw/precision.hpp);
  * one sampler call, reported as seconds per network evaluation (NFE);
  * the same with bench/pytorch_bench.py where it has a port of the model (NCSN,
    DDPM U-Net): eager at each precision, and torch.compile (default mode) at
    bf16, its compile time reported apart from the step time;
  * peak GPU memory of each process (bytes held by tensors, as
    torch.cuda.max_memory_allocated reports it on both sides).
Then the main job's --profile full for its first N training steps per family,
from the runs' own records (runner compare --format csv).

--dry-run shrinks every size (batch 2, one timed block, one compiled case) so that
the whole script can be checked on a CPU; its table says so in its title.
"""
import argparse
import csv
import datetime
import gzip
import io
import os
import platform
import random
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, log, run_json, without_metrics, write_random_cifar  # noqa: E402

PRECISIONS = ["fp32", "tf32", "bf16"]

# Each family's paper-size experiment, the sampler settings that time a few NFE of its
# own sampler (the per-NFE cost is what is compared), and whether pytorch_bench has a port.
FAMILIES = [
    dict(key="ncsn", experiment="experiments/ncsn_cifar.toml", python=True,
         sample=["sampler.steps_per_level=1"]),
    dict(key="ddpm", experiment="experiments/ddpm_cifar.toml", python=True,
         sample=['sampler.plugin="ddim"', "sampler.num_inference_steps=10"]),
    dict(key="vae", experiment="experiments/vae_cifar.toml", python=False, sample=[]),
    dict(key="realnvp", experiment="experiments/realnvp_cifar.toml", python=False, sample=[]),
    dict(key="gan", experiment="experiments/gan_cifar.toml", python=False, sample=[]),
    dict(key="glow", experiment="experiments/glow_cifar.toml", python=False, sample=[]),
    # One sampler call is 3072 passes (one per sub-pixel); a dry run shrinks the network, not only the batch.
    dict(key="pixelcnn", experiment="experiments/pixelcnn_cifar.toml", python=False, sample=[],
         dry_run=["model.filters=4", "model.num_resnet=1"]),
]


def sets(assignments):
    return [a for s in assignments for a in ("--set", s)]


def write_random_fashion(folder):
    """Fashion-MNIST's four IDX files (gzip) at their real sizes, of random pixels: the step
    times of the main job do not depend on the pixels, and the GPU machine may lack the data."""
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(0)
    for split, count in (("train", 60000), ("t10k", 10000)):
        pixels = bytes(rng.getrandbits(8) for _ in range(count * 28 * 28))
        with gzip.open(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), "wb", compresslevel=1) as f:
            f.write(struct.pack(">IIII", 2051, count, 28, 28) + pixels)
        with gzip.open(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), "wb", compresslevel=1) as f:
            f.write(struct.pack(">II", 2049, count) + bytes(rng.randrange(10) for _ in range(count)))


def device_description(python, device):
    if device != "cuda":
        return f"CPU ({platform.processor() or platform.machine()}), {os.cpu_count()} cores"
    probe = ("import torch; p = torch.cuda.get_device_properties(0); "
             "print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
             "cuDNN {torch.backends.cudnn.version()}')")
    return subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def fmt(value, scale=1.0, digits=3):
    return "" if value is None else f"{value * scale:.{digits}g}"


def measure_family(family, args, bench, python, work, data_sets):
    log(family["experiment"])
    experiment = without_metrics(family["experiment"], work)
    common = ["--device", args.device]
    small = (["train.batch_size=2", "sampler.batch_size=2", "sampler.num_samples=2"] + family.get("dry_run", [])
             if args.dry_run else [])
    block, reps = ("1", "1") if args.dry_run else (str(args.block), str(args.reps))
    data = data_sets.get("cifar", [])
    rows = []
    for precision in PRECISIONS:
        precision_sets = [f'train.precision="{precision}"', f'sampler.precision="{precision}"']
        resolved = os.path.join(work, f"{family['key']}_{precision}.toml")
        train = run_json([bench, "train", experiment, "--path", "runner", "--block", block, "--reps", reps,
                          "--resolved", resolved] + sets(data + small + precision_sets) + common,
                         f"genfw train {precision}")
        sample_resolved = os.path.join(work, f"{family['key']}_{precision}_sample.toml")
        sample = run_json([bench, "sample", experiment, "--reps", reps, "--resolved", sample_resolved]
                          + sets(data + small + family["sample"] + precision_sets) + common,
                          f"genfw sample {precision}")
        rows.append(dict(side="genfw", precision=precision, compile="", train=train, sample=sample))
        if not family["python"]:
            continue
        modes = ["none"] + (["default"] if precision == "bf16" and (not args.dry_run or family["key"] == "ddpm")
                            else [])
        for mode in modes:
            what = f"pytorch {precision}" + (f" compile={mode}" if mode != "none" else "")
            py_common = ["--expect-params", str(train["parameters"]), "--device", args.device,
                         "--precision", precision, "--compile", mode]
            py_train = run_json([python, "bench/pytorch_bench.py", "train", resolved, "--block", block,
                                 "--reps", reps] + py_common, what + " train")
            py_sample = run_json([python, "bench/pytorch_bench.py", "sample", sample_resolved, "--reps", reps]
                                 + py_common, what + " sample")
            rows.append(dict(side="PyTorch", precision=precision, compile=mode if mode != "none" else "eager",
                             train=py_train, sample=py_sample))
    return rows


def family_table(family, rows):
    lines = [f"### {family['experiment']}", "",
             "| code | precision | compile | batch | train s/step | train peak GPU MiB | sample batch | NFE "
             "| sample ms/NFE | sample peak GPU MiB | compile s (train + sample) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        t, s = r["train"], r["sample"]
        step = t.get("runner_step_s", t.get("step_s"))
        per_nfe = s["sample_s"] / max(s["nfe"], 1)
        compile_s = (t.get("compile_s", 0.0) + s.get("compile_s", 0.0)) if r["compile"] not in ("", "eager") else None
        lines.append(f"| {r['side']} | {r['precision']} | {r['compile']} | {t['batch_size']} | {fmt(step, 1, 4)} "
                     f"| {fmt(t.get('peak_device_mib'), 1, 4)} | {s['num_samples']} | {s['nfe']:g} "
                     f"| {fmt(per_nfe, 1e3)} | {fmt(s.get('peak_device_mib'), 1, 4)} | {fmt(compile_s)} |")
    return lines


def main_job(args, runner, work, fashion_sets):
    """The main job's --profile full, each family trained for its first N steps."""
    out = os.path.join(work, "main_job")
    shutil.rmtree(out, ignore_errors=True)
    steps = 2 if args.dry_run else args.main_job_steps
    samples = 2 if args.dry_run else 64
    command = [runner, "experiments/benchmark_fashion.toml", "--profile", "full", "--out", out,
               "--device", args.device, "--set", f"train.steps={steps}", "--set", "train.log_every=1",
               "--set", f"sampler.num_samples={samples}", "--set", f"sampler.batch_size={samples}",
               "--set", "train.checkpoint_every=1000000"] + sets(fashion_sets)
    if args.dry_run:  # 2 samples: the metrics' smallest settings (IS in 1 split, precision/recall with k = 1)
        command += sets(["train.batch_size=2", "metrics.inception_score.splits=1", "metrics.precision_recall.k=1"])
    log("main job: " + " ".join(command))
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, GENFW_PLOTS="off"))
    if done.returncode != 0:
        return [f"The main job's --profile full did not finish (exit {done.returncode}):", "",
                "```", done.stderr[-3000:].strip(), "```"]
    runs = sorted(os.path.join(root, f) for root, _, files in os.walk(out) for f in files if f.endswith(".h5"))
    table = subprocess.run([runner, "compare", "--format", "csv", "--all"] + runs, capture_output=True, text=True,
                           check=True).stdout
    lines = [f"`runner experiments/benchmark_fashion.toml --profile full --device {args.device} "
             f"--set train.steps={steps} --set sampler.num_samples={samples}` (the rest of the profile as it is):",
             "", "| experiment | model | parameters | train steps | train s | s / step (incl. the first) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in csv.DictReader(io.StringIO(table)):
        if not row.get("train steps"):
            continue
        seconds, count = float(row["train s"]), float(row["train steps"])
        lines.append(f"| {row['experiment']} | {row['model']} | {row['parameters']} | {count:g} | {seconds:.3g} "
                     f"| {seconds / count:.3g} |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", required=True, help="build folder with runner and genfw_bench")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "gpu.md"))
    p.add_argument("--dry-run", action="store_true", help="tiny sizes: checks the script end to end, on a CPU too")
    p.add_argument("--block", type=int, default=5, help="training steps per timed block")
    p.add_argument("--reps", type=int, default=3, help="timed blocks (and sampler calls)")
    p.add_argument("--main-job-steps", type=int, default=20)
    p.add_argument("--fashion", default="/usr/share/datasets/fashion-mnist",
                   help="Fashion-MNIST folder; random pixels of the same format when it is missing")
    p.add_argument("--only", default="", help="comma-separated family keys (ncsn, ddpm, vae, realnvp, gan, main)")
    args = p.parse_args()
    build = os.path.abspath(args.build)
    bench, runner = os.path.join(build, "genfw_bench"), os.path.join(build, "runner")
    for exe in (bench, runner):
        if not os.access(exe, os.X_OK):
            sys.exit(f"gpu_bench: {exe} not found (configure with -DGENFW_BUILD_BENCH=ON and build)")
    python = sys.executable
    work = os.path.join(build, "gpu-bench")
    os.makedirs(work, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)

    data_sets = {}
    if not os.path.exists(os.path.join(ROOT, "data", "cifar-10-batches-bin", "test_batch.bin")):
        folder = os.path.join(work, "cifar-10-batches-bin")
        if not os.path.exists(os.path.join(folder, "test_batch.bin")):
            write_random_cifar(folder)
        data_sets["cifar"] = [f'data.path="{folder}"']
    fashion_sets, fashion_note = [], "the real files"
    if not os.path.exists(os.path.join(args.fashion, "t10k-labels-idx1-ubyte.gz")):
        folder = os.path.join(work, "fashion-mnist")
        if not os.path.exists(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")):
            write_random_fashion(folder)
        fashion_sets = [f'data.path="{folder}"']
        fashion_note = "random pixels in the IDX format at the real sizes (the real files were not on the machine)"

    only = set(filter(None, args.only.split(",")))
    sections = []
    for family in FAMILIES:
        if not only or family["key"] in only:
            sections += family_table(family, measure_family(family, args, bench, python, work, data_sets)) + [""]
    if not only or "main" in only:
        sections += ["## The main job, --profile full", ""] + main_job(args, runner, work, fashion_sets) + [""]

    torch_version = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                                   text=True, check=True).stdout.strip()
    title = "# genfw on one GPU" + (" — DRY RUN on the CPU (tiny sizes; no number here is a measurement to quote)"
                                    if args.dry_run else "")
    head = [title, "",
            f"{started:%Y-%m-%d %H:%M} UTC, `tools/gpu_check.sh` (bench/gpu_bench.py). Device: "
            f"{device_description(python, args.device)}. PyTorch {torch_version} (genfw built against its LibTorch). "
            f"Host CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores.", "",
            "Training: median of the timed blocks' seconds per step after one warm-up block "
            f"({'1 step' if args.dry_run else f'{args.block} steps'} a block); genfw through `genfw::Trainer` "
            "(genfw_bench train --path runner), PyTorch through bench/pytorch_bench.py with the same architecture "
            "(parameter counts asserted equal), loss, optimizer and batch. Sampling: one sampler call of the "
            "experiment's sampler batch, reduced to a few NFE (NCSN: 1 step per noise level; DDPM: DDIM 10 "
            "steps), as ms per NFE. Precision: fp32 = float32 with TF32 off, tf32 = TF32 tensor cores on "
            "(cuBLAS and cuDNN), bf16 = autocast. torch.compile is timed in its default mode at bf16; its "
            "first-block compile time is shown apart. CIFAR-10: "
            + ("random pixels in the CIFAR binary format." if data_sets else "the real files.")
            + f" Fashion-MNIST: {fashion_note}.", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(head + sections))
    log("wrote " + os.path.relpath(args.out, ROOT) if args.out.startswith(ROOT) else args.out)


if __name__ == "__main__":
    main()
