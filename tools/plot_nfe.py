#!/usr/bin/env python3
"""FID against the number of network evaluations, one line per sampler.

    python3 tools/plot_nfe.py RUN.h5... -o fid_vs_nfe.png [--metric fid]

Reads what every genfw run file records: the sampler (root attribute 'sampler'),
NFE per sample (/timing/nfe) and the metric's last value (/metrics/<metric>:
rows in the order its 'columns' attribute names, step,value,wall_seconds; files
before run_file_version 2 wrote value,step,wall_seconds). Needs h5py and matplotlib
(apt-get install python3-h5py python3-matplotlib).
"""
import argparse
import collections
import sys

import h5py
import numpy as np


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def metric_values(dataset):
    """The value column of a /metrics dataset, in either file version's order."""
    columns = text(dataset.attrs.get("columns", "value,step,wall_seconds")).split(",")
    return np.asarray(dataset[()]).reshape(-1, 3)[:, columns.index("value")]


def read_run(path, metric):
    """(sampler, nfe, metric value) of one run file, or None when it lacks them."""
    with h5py.File(path, "r") as f:
        if "/timing/nfe" not in f or f"/metrics/{metric}" not in f:
            return None
        sampler = text(f.attrs.get("sampler", "?"))
        nfe = float(np.asarray(f["/timing/nfe"][()]).reshape(-1)[0])
        value = float(metric_values(f[f"/metrics/{metric}"])[-1])
        return sampler, nfe, value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run files (.h5)")
    parser.add_argument("-o", "--output", default="fid_vs_nfe.png")
    parser.add_argument("--metric", default="fid")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_sampler = collections.defaultdict(list)
    for path in args.runs:
        try:
            run = read_run(path, args.metric)
        except OSError as error:  # e.g. not an HDF5 file
            print(f"skipped {path}: {error}", file=sys.stderr)
            continue
        if run is None:
            print(f"skipped {path}: no NFE or no '{args.metric}'", file=sys.stderr)
            continue
        sampler, nfe, value = run
        by_sampler[sampler].append((nfe, value))
        print(f"{sampler:12s} NFE {nfe:7.1f}  {args.metric} {value:8.3f}  {path}")
    if not by_sampler:
        sys.exit("no run file had both NFE and the metric")

    fig, ax = plt.subplots(figsize=(6, 4))
    for sampler, points in sorted(by_sampler.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=sampler)
    ax.set_xscale("log")
    ax.set_xlabel("NFE per sample")
    ax.set_ylabel(args.metric.upper())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
