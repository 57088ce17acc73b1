#!/usr/bin/env python3
"""Pictures of genfw run files: each run's loss curves, and each metric across runs.

    python3 tools/plot_runs.py RUN.h5... [-o DIR] [--x nfe|KEY] [--metric NAME]...
    python3 tools/plot_runs.py --self-test

For every run with /train/loss: <run>_loss.png beside it (or in -o DIR), every
loss group against the step (log y when all values are positive and span a
decade; /train/record series in a second panel), titled with the experiment,
model, objective and sampler.

For two or more runs: <metric>_vs_<x>.png per metric in -o DIR (default: the
runs' common parent folder), the metric's last value against
  - the swept value, when the runs' resolved configs (/config) differ in exactly
    one key present in all of them (a sweep), or
  - NFE per sample (/timing/nfe) otherwise, one line per sampler (a suite, or
    `runner sample` sweeps over several samplers),
--x forces either. A metric NAME_std or NAME_sem becomes NAME's error bars.

Column order: /train datasets are [step, value, wall_seconds]; /metrics datasets
say theirs in the attribute `columns` ("step,value,wall_seconds"), and without
it are [value, step, wall_seconds] (older files). Needs h5py and matplotlib
(apt-get install python3-h5py python3-matplotlib), Python 3.11 for tomllib.
"""
import argparse
import collections
import os
import re
import sys
import tempfile

import h5py
import numpy as np

try:
    import tomllib
except ImportError:  # Python < 3.11: no swept-key detection, NFE plots only
    tomllib = None

TRAIN_COLUMNS = "step,value,wall_seconds"
OLD_METRIC_COLUMNS = "value,step,wall_seconds"
ERROR_SUFFIXES = ("_std", "_sem")

Run = collections.namedtuple("Run", "path attrs config losses records metrics extractors nfe floors")


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def read_series(dataset, default_columns):
    """(steps, values) of a [rows, 3] dataset, in whichever column order it declares."""
    rows = dataset[()]
    if rows.dtype.names:  # a compound dataset names its columns itself
        return np.asarray(rows["step"], float), np.asarray(rows["value"], float)
    columns = text(dataset.attrs.get("columns", default_columns)).split(",")
    rows = np.asarray(rows, float).reshape(-1, len(columns))
    return rows[:, columns.index("step")], rows[:, columns.index("value")]


def read_group(f, path, default_columns):
    if path not in f:
        return {}
    return {name: read_series(dataset, default_columns) for name, dataset in f[path].items()
            if isinstance(dataset, h5py.Dataset) and len(dataset) > 0}


def flatten(table, prefix=""):
    """{dotted key: value}; an array of tables ([[metrics]]) is keyed by each entry's plugin."""
    flat = {}
    for key, value in table.items():
        name = prefix + key
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, entry in enumerate(value):
                flat.update(flatten(entry, f"{name}.{entry.get('plugin', i)}."))
        else:
            flat[name] = value
    return flat


def read_run(path):
    with h5py.File(path, "r") as f:
        attrs = {key: text(value) for key, value in f.attrs.items()}
        config = {}
        if tomllib is not None and "config" in f:
            config = flatten(tomllib.loads(text(f["config"][()])))
        metrics = {name: values[-1] for name, (_, values) in read_group(f, "metrics", OLD_METRIC_COLUMNS).items()}
        extractors = {name: text(d.attrs.get("provenance.extractor", "")) for name, d in f["metrics"].items()} \
            if "metrics" in f else {}
        nfe = float(np.asarray(f["timing/nfe"][()]).reshape(-1)[0]) if "timing/nfe" in f else None
        # The real-data floor: {metric: (value, count)} (/floor/<metric>, attribute count).
        floors = {name: (values[-1], text(f["floor"][name].attrs.get("count", "?")))
                  for name, (_, values) in read_group(f, "floor", TRAIN_COLUMNS).items()}
        return Run(path, attrs, config, read_group(f, "train/loss", TRAIN_COLUMNS),
                   read_group(f, "train/record", TRAIN_COLUMNS), metrics, extractors, nfe, floors)


def run_title(run):
    parts = [run.attrs.get(key, "") for key in ("model", "objective", "sampler")]
    title = run.attrs.get("experiment", os.path.basename(run.path)) + "\n" + " · ".join(p for p in parts if p)
    status = run.attrs.get("status", "completed")
    return title if status == "completed" else f"{title}  [{status}]"


def smoothed(values):
    """Running mean over ~2% of the points: the trend through noisy minibatch losses."""
    window = max(1, len(values) // 50)
    if window == 1:
        return values
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def plot_series(ax, series, ylabel):
    for i, (name, (steps, values)) in enumerate(sorted(series.items())):
        color = f"C{i}"
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smoothed(values), color=color, linewidth=1.6, label=name)
    low = min(values.min() for _, values in series.values())
    if low > 0 and max(values.max() for _, values in series.values()) / low >= 10:
        ax.set_yscale("log")  # only where it spreads a decade or more
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def plot_losses(plt, run, output):
    panels = [(run.losses, "loss")] + ([(run.records, "recorded")] if run.records else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.2), squeeze=False)
    for ax, (series, ylabel) in zip(axes[0], panels):
        plot_series(ax, series, ylabel)
    fig.suptitle(run_title(run), fontsize="medium")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)


def swept_keys(runs):
    """Config keys present in every run whose values differ (the name and the seed aside: seeds are averaged)."""
    common = set.intersection(*(set(run.config) for run in runs)) - {"name", "seed"}
    return sorted(key for key in common if len({repr(run.config[key]) for run in runs}) > 1)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# t such that P(T <= t) = 0.975 for Student's t with 1..30 degrees of freedom (as runner compare).
T_975 = [12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252,
         2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830, 2.160368656, 2.144786688,
         2.131449546, 2.119905299, 2.109815578, 2.100922040, 2.093024054, 2.085963447, 2.079613845,
         2.073873068, 2.068657610, 2.063898562, 2.059538553, 2.055529439, 2.051830516, 2.048407142,
         2.045229642, 2.042272456]


def over_seeds(points):
    """Points sharing an x (runs that differ only in their seed) become their mean ± the 95% CI."""
    by_x = collections.defaultdict(list)
    for x, value, error in points:
        by_x[repr(x)].append((x, value, error))
    merged = []
    for same in by_x.values():
        if len(same) == 1:
            merged.append(same[0])
            continue
        values = np.array([p[1] for p in same])
        t = T_975[len(values) - 2] if len(values) - 1 <= len(T_975) else 1.959964
        merged.append((same[0][0], values.mean(), t * values.std(ddof=1) / np.sqrt(len(values))))
    return merged


def metric_points(runs, metric, x_key):
    """{line label: [(x, value, error)]} for the runs that have the metric; seeds averaged."""
    lines = metric_points_per_run(runs, metric, x_key)
    return collections.defaultdict(list, {label: over_seeds(points) for label, points in lines.items()})


def metric_points_per_run(runs, metric, x_key):
    error_names = [metric + suffix for suffix in ERROR_SUFFIXES]
    models = {run.attrs.get("model", "") for run in runs}
    lines = collections.defaultdict(list)
    for run in runs:
        if metric not in run.metrics or (x_key == "nfe" and run.nfe is None):
            continue
        error = next((run.metrics[name] for name in error_names if name in run.metrics), None)
        if x_key == "nfe":
            sampler = run.attrs.get("sampler", "?")
            label = sampler if len(models) == 1 else f"{run.attrs.get('model', '?')} · {sampler}"
            lines[label].append((run.nfe, run.metrics[metric], error))
        else:
            lines[""].append((run.config[x_key], run.metrics[metric], error))
    return lines


def plot_metric(plt, runs, metric, x_key, output):
    lines = metric_points(runs, metric, x_key)
    xs = [p[0] for points in lines.values() for p in points]
    numeric = all(is_number(x) for x in xs)
    categories = sorted({repr(x) for x in xs}) if not numeric else []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, points in sorted(lines.items()):
        points.sort(key=lambda p: p[0] if numeric else categories.index(repr(p[0])))
        x = [p[0] if numeric else categories.index(repr(p[0])) for p in points]
        errors = [p[2] if p[2] is not None else 0.0 for p in points]
        ax.errorbar(x, [p[1] for p in points], yerr=errors if any(errors) else None, marker="o", capsize=3,
                    linestyle="-" if numeric else "none", label=label or None)  # no line between categories
    if numeric and min(xs) > 0 and max(xs) / min(xs) >= 20:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")  # 100, not 10^2
    if categories:
        ax.set_xticks(range(len(categories)), categories, rotation=20, fontsize="small")
    extractors = {run.extractors.get(metric, "") for run in runs if metric in run.metrics}
    subtitle = f"extractor: {extractors.pop()}" if len(extractors) == 1 else "extractors differ: not comparable"
    floors = {run.floors[metric] for run in runs if metric in run.floors}
    for i, (value, count) in enumerate(sorted(floors)):  # one line per distinct sample count
        ax.axhline(value, color="0.4", linestyle="--", linewidth=1, label=f"real data (N={count})" if i < 3 else None)
    counted = sum(metric in run.metrics for run in runs)
    if counted > len(xs):
        subtitle += "; seeds: mean ± 95% CI"
    ax.set_title(f"{metric} (last value), {counted} runs\n{subtitle}", fontsize="medium")
    ax.set_xlabel("NFE per sample" if x_key == "nfe" else x_key)
    ax.set_ylabel(metric)
    ax.grid(True, which="both", alpha=0.3)
    if any(lines) or floors:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)


def loss_outputs(runs, directory):
    """<run>_loss.png per run; a file stem shared by runs in different folders gets the folder's name."""
    stems = [os.path.splitext(os.path.basename(run.path))[0] for run in runs]
    outputs = []
    for run, stem in zip(runs, stems):
        folder = directory or os.path.dirname(os.path.abspath(run.path))
        if directory and stems.count(stem) > 1:
            stem = os.path.basename(os.path.dirname(os.path.abspath(run.path))) + "_" + stem
        outputs.append(os.path.join(folder, stem + "_loss.png"))
    return outputs


def choose_x(runs, forced):
    if forced:
        return forced
    keys = swept_keys(runs)
    return keys[0] if len(keys) == 1 else "nfe"


def plot_runs(paths, directory=None, x_forced=None, metrics=None):
    """Writes the pictures; returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for path in paths:
        try:
            runs.append(read_run(path))
        except OSError as error:  # e.g. a run still being written (HDF5 file lock)
            print(f"skipped {path}: {error}", file=sys.stderr)
    if directory:
        os.makedirs(directory, exist_ok=True)
    written = []
    for run, output in zip(runs, loss_outputs(runs, directory)):
        if run.losses:
            plot_losses(plt, run, output)
            written.append(output)
    runs = [run for run in runs if run.metrics]  # a run that only trains says nothing about the x axis
    if len(runs) >= 2:
        x_key = choose_x(runs, x_forced)
        if x_key != "nfe" and not all(x_key in run.config for run in runs):
            sys.exit(f"--x {x_key}: not a config key of every run with metrics "
                     f"(swept keys: {', '.join(swept_keys(runs))})")
        names = metrics or sorted({name for run in runs for name in run.metrics
                                   if not (name.endswith(ERROR_SUFFIXES) and name.rsplit("_", 1)[0] in run.metrics)})
        folder = directory or os.path.commonpath([os.path.dirname(os.path.abspath(r.path)) for r in runs])
        for metric in names:
            if not any(metric_points(runs, metric, x_key).values()):
                print(f"no run has both '{metric}' and {x_key}", file=sys.stderr)
                continue
            output = os.path.join(folder, re.sub(r"[^\w.-]", "_", f"{metric}_vs_{x_key}") + ".png")
            plot_metric(plt, runs, metric, x_key, output)
            written.append(output)
    return written


def write_fake_run(path, sampler, steps, fid, nfe, new_columns, seed):
    """A small run file with what plot_runs reads; fid in the new or the old column order."""
    rng = np.random.default_rng(seed)
    step = np.arange(1, 301, dtype=float)
    with h5py.File(path, "w") as f:
        f.attrs.update({"experiment": os.path.basename(path)[:-3], "model": "ddpm_unet",
                        "objective": "ddpm", "sampler": sampler, "status": "completed"})
        f["config"] = (f'name = "{os.path.basename(path)}"\nseed = 0\n[sampler]\nplugin = "{sampler}"\n'
                       f'steps = {steps}\n[[metrics]]\nplugin = "fid"\n').encode()
        loss = 1 / np.sqrt(step) + 0.05 * rng.random(300)
        f["train/loss/model"] = np.stack([step, loss, step * 0.1], 1)
        f["train/loss/discriminator"] = np.stack([step, np.sin(step / 30) - 0.2, step * 0.1], 1)  # not all positive
        f["train/record/kl"] = np.stack([step, 5 + rng.random(300), step * 0.1], 1)
        rows = [300.0, fid, 12.5] if new_columns else [fid, 300.0, 12.5]
        f["metrics/fid"] = np.array([rows])
        f["metrics/fid"].attrs["provenance.extractor"] = "identity"
        f["metrics/fid_std"] = np.array([[0.3, 300.0, 12.5]])
        if new_columns:
            f["metrics/fid"].attrs["columns"] = TRAIN_COLUMNS
        f["timing/nfe"] = float(nfe)


def self_test():
    with tempfile.TemporaryDirectory() as folder:
        sweep = []
        for i, steps in enumerate([10, 20, 50]):
            path = os.path.join(folder, f"ddim_steps{steps}.h5")
            write_fake_run(path, "ddim", steps, fid=100.0 / steps, nfe=steps, new_columns=i % 2 == 0, seed=i)
            sweep.append(path)
        assert [read_run(p).metrics["fid"] for p in sweep] == [10.0, 5.0, 2.0], "column orders misread"
        written = plot_runs(sweep)
        assert os.path.basename(written[-1]) == "fid_vs_sampler.steps.png", written
        edm = os.path.join(folder, "edm_steps18.h5")
        write_fake_run(edm, "edm", 18, fid=3.0, nfe=35, new_columns=True, seed=9)
        written += plot_runs(sweep + [edm], directory=os.path.join(folder, "plots"))
        assert os.path.basename(written[-1]) == "fid_vs_nfe.png", written
        assert all(os.path.getsize(p) > 10000 for p in written), written
        print(f"self-test passed: {len(written)} pictures from fake run files")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run files (.h5)")
    parser.add_argument("-o", "--output-dir", help="folder for the pictures")
    parser.add_argument("--x", help="x axis of the metric plots: nfe or a config key such as sampler.steps")
    parser.add_argument("--metric", action="append", help="plot only this metric (repeatable)")
    parser.add_argument("--self-test", action="store_true", help="plot fake run files in a temporary folder")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if not args.runs:
        parser.error("no run files")
    for output in plot_runs(args.runs, args.output_dir, args.x, args.metric):
        print(f"wrote {output}")


if __name__ == "__main__":
    main()
