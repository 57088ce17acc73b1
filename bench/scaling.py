#!/usr/bin/python3
"""Data-parallel training throughput: 1 process against N (c10d gloo on loopback).

    python3 bench/scaling.py [--build DIR] [--procs 1,2] [--steps 60] [--out bench/scaling.md]

Each case is an experiment of experiments/ trained by `runner --nproc P --threads 1`
(one intra-op thread per process, as the issue asks) for --steps steps at its own
global batch; it samples one image afterwards, which is not timed. Throughput =
steps × global batch / /timing/train_seconds of the run file (rank 0's training
loop: data, forward, backward, bucketed all-reduce, optimizer). Scaling
efficiency = throughput(P) / (P × throughput(1)). Run it on a quiet machine: the
table records the load average before each run.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [  # (label, experiment, steps as a multiple of --steps): a conv U-Net and the small score MLP
    ("ddpm_fashion (U-Net, batch 32)", "experiments/ddpm_fashion.toml", 1),
    ("score_toy2d (MLP, batch 128)", "experiments/score_toy2d.toml", 30),  # 1 ms steps: more of them
]


def train_throughput(runner, experiment, procs, steps, folder):
    out = os.path.join(folder, f"{os.path.basename(experiment)}-{procs}")
    command = [runner, os.path.join(ROOT, experiment), "--nproc", str(procs), "--threads", "1", "--out", out,
               "--set", f"train.steps={steps}", "--set", "sampler.num_samples=1", "--set", "sampler.batch_size=1",
               "--set", "log.progress=\"off\""]
    started = time.time()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, GENFW_PLOTS="off"))
    wall = time.time() - started
    run_file = os.path.join(out, [f for f in os.listdir(out) if f.endswith(".h5")][0])
    with h5py.File(run_file, "r") as f:
        seconds = float(f["timing/train_seconds"][()])
        batch = int([line for line in f["config"][()].decode().splitlines() if line.startswith("batch_size")][0]
                    .split("=")[1])
    return steps * batch / seconds, seconds, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--procs", default="1,2")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "scaling.md"))
    args = parser.parse_args()
    runner = os.path.abspath(os.path.join(args.build, "runner"))
    procs = [int(p) for p in args.procs.split(",")]
    lines = ["# Data-parallel training throughput (c10d gloo, loopback, 1 thread per process)", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, {args.steps} steps per U-Net run, "
             f"{30 * args.steps} per MLP run; "
             "throughput = steps × global batch / train_seconds (rank 0); efficiency = throughput(P) / (P × throughput(1))",
             "", "| experiment | processes | train s | examples/s | speed-up | efficiency | load before |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    with tempfile.TemporaryDirectory() as folder:
        for label, experiment, multiple in CASES:
            base = None
            for p in procs:
                load = os.getloadavg()[0]
                throughput, seconds, _ = train_throughput(runner, experiment, p, args.steps * multiple, folder)
                base = base or throughput
                lines.append(f"| {label} | {p} | {seconds:.2f} | {throughput:.1f} | {throughput / base:.2f} | "
                             f"{throughput / (p * base):.0%} | {load:.2f} |")
                print(lines[-1], file=sys.stderr)
    with open(args.out, "w") as out:
        out.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
