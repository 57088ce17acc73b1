#!/usr/bin/python3
"""Seconds per training step of every experiments/*_cifar.toml at its paper size.

    python3 bench/cifar_steps.py [--build DIR] [--steps 3] [--threads N] [--out bench/cifar_steps.md]

Each experiment trains --steps steps through the runner (its own model, batch,
objective and optimizer; data: random pixels in CIFAR-10's binary format unless
data/cifar-10-batches-bin exists) with log_every = 1; the step time is the median
of the wall-clock differences between consecutive logged steps after the first
(which includes start-up). Peak memory is the runner's max RSS. What the
experiments' comments say about their cost comes from this table.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, write_random_cifar, without_metrics  # noqa: E402

EXPERIMENTS = ["ncsn_cifar", "ddpm_cifar", "vae_cifar", "realnvp_cifar", "gan_cifar"]


def step_seconds(runner, experiment, steps, threads, data, folder, extra):
    config = without_metrics(f"experiments/{experiment}.toml", folder)
    out = os.path.join(folder, experiment)
    command = [runner, config, "--threads", str(threads), "--out", out, "--set", f"train.steps={steps}",
               "--set", "train.log_every=1", "--set", f"data.path=\"{data}\"", "--set", "log.checkpoint=false",
               "--set", "log.progress=\"off\"", "--set", "sampler.num_samples=1", "--set", "sampler.batch_size=1"]
    child = subprocess.Popen(command + extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, GENFW_PLOTS="off"))
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak memory
    peak = usage.ru_maxrss / 1024
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return None, None, peak, f"killed by signal {signal}" if signal else f"exit {os.WEXITSTATUS(status)}"
    run_file = os.path.join(out, experiment + ".h5")
    with h5py.File(run_file, "r") as f:
        group = f["train/loss"]
        rows = group[sorted(group)[0]][()]
        columns = group[sorted(group)[0]].attrs.get("columns", "step,value,wall_seconds")
        columns = (columns.decode() if isinstance(columns, bytes) else columns).split(",")
        walls = sorted(rows[:, columns.index("wall_seconds")])
        batch = int([line for line in f["config"][()].decode().splitlines() if line.startswith("batch_size")][0]
                    .split("=")[1])
    return statistics.median(b - a for a, b in zip(walls, walls[1:])), batch, peak, ""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "cifar_steps.md"))
    parser.add_argument("--only", default="", help="comma-separated experiment names")
    parser.add_argument("--runner-arg", action="append", default=[], help="extra runner argument (repeatable)")
    args = parser.parse_args()
    runner = os.path.abspath(os.path.join(args.build, "runner"))
    chosen = [e for e in EXPERIMENTS if not args.only or e in args.only.split(",")]
    lines = ["# Paper-size CIFAR-10 training steps on this machine", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, {args.threads} threads, "
             f"median of {args.steps - 1} step times after the first"
             + (f", runner {' '.join(args.runner_arg)}" if args.runner_arg else ""), "",
             "| experiment | batch | s / step | steps / hour | peak RSS MiB | load before |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    with tempfile.TemporaryDirectory() as folder:
        data = os.path.join(ROOT, "data", "cifar-10-batches-bin")
        if not os.path.isdir(data):
            data = os.path.join(folder, "cifar")
            write_random_cifar(data)
        for experiment in chosen:
            load = os.getloadavg()[0]
            seconds, batch, peak, failure = step_seconds(runner, experiment, args.steps, args.threads, data, folder,
                                                         args.runner_arg)
            if failure:  # e.g. the kernel's OOM killer: the peak says how far it got
                lines.append(f"| {experiment} | | {failure} | | > {peak:.0f} | {load:.2f} |")
            else:
                lines.append(f"| {experiment} | {batch} | {seconds:.2f} | {3600 / seconds:.0f} | {peak:.0f} | {load:.2f} |")
            print(lines[-1], file=sys.stderr)
            shutil.rmtree(os.path.join(folder, experiment), ignore_errors=True)
    with open(args.out, "w") as out:
        out.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
