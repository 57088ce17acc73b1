#!/usr/bin/env python3
"""Pictures of genfw run files: each run's loss curves, and each metric across runs.

    python3 tools/plot_runs.py RUN.h5... [-o DIR] [--x nfe|KEY] [--metric NAME]...
    python3 tools/plot_runs.py --self-test

For every run with /train/loss: <run>_loss.png beside it (or in -o DIR), every
loss group against the step (log y when all values are positive and span a
decade; /train/record series in a second panel), titled with the experiment,
model, objective and sampler.

With evaluations during training (/eval, [eval] every): each value against the
step and against training minutes, <run>_eval_<value>.png for one run, or
eval_<value>.png in -o DIR for several, a line per configuration (runs that differ
only in their seed: mean ± 95% CI band) and the real-data floor at the
evaluations' N (/eval_floor).

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

MISSING_MODULE_EXIT = 3  # the runner prints nothing more: this script said what is missing

try:
    import h5py
    import matplotlib
    import numpy as np
except ImportError as missing:  # one line, never a traceback: the runs are written, only pictures are missing
    print(f"plots: not drawn, {sys.executable} lacks the module '{missing.name}' "
          "(make deps, or apt-get install python3-h5py python3-matplotlib); GENFW_PLOTS=off skips them",
          file=sys.stderr)
    sys.exit(MISSING_MODULE_EXIT)

try:
    import tomllib
except ImportError:  # Python < 3.11: no swept-key detection, NFE plots only
    tomllib = None

TRAIN_COLUMNS = "step,value,wall_seconds"
OLD_METRIC_COLUMNS = "value,step,wall_seconds"
ERROR_SUFFIXES = ("_std", "_sem")

Run = collections.namedtuple("Run", "path attrs config losses records metrics extractors nfe floors points "
                                   "evals eval_floors")


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


def read_evaluations(f):
    """{value: (steps, values, training seconds)} of /eval, the evaluations during training."""
    evals = {}
    for name, dataset in (f["eval"].items() if "eval" in f else []):
        if len(dataset) == 0:
            continue
        columns = text(dataset.attrs.get("columns", TRAIN_COLUMNS)).split(",")
        rows = np.asarray(dataset[()], float).reshape(-1, len(columns))
        evals[name] = tuple(rows[:, columns.index(c)] for c in ("step", "value", "wall_seconds"))
    return evals


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
        points = None  # 2-D samples, for a histogram with axes
        if "samples" in f and f["samples"].ndim == 2 and f["samples"].shape[1] == 2:
            points = np.asarray(f["samples"][()], float)
        eval_floors = {name: (values[-1], text(f["eval_floor"][name].attrs.get("count", "?")))
                       for name, (_, values) in read_group(f, "eval_floor", TRAIN_COLUMNS).items()}
        return Run(path, attrs, config, read_group(f, "train/loss", TRAIN_COLUMNS),
                   read_group(f, "train/record", TRAIN_COLUMNS), metrics, extractors, nfe, floors, points,
                   read_evaluations(f), eval_floors)


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
    legend_outside(ax)


def legend_outside(ax):
    """The legend to the right of the axes, where it covers no data."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def plot_losses(plt, run, output):
    panels = [(run.losses, "loss")] + ([(run.records, "recorded")] if run.records else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.2), squeeze=False)
    for ax, (series, ylabel) in zip(axes[0], panels):
        plot_series(ax, series, ylabel)
    fig.suptitle(run_title(run), fontsize="medium")
    fig.savefig(output, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_histogram(plt, run, output):
    """The 2-D samples as a histogram with axes, a colour scale and the sample count."""
    x, y = run.points[:, 0], run.points[:, 1]
    finite = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    bins = int(np.clip(np.sqrt(finite.sum()), 20, 100))  # ~√N bins a side: a few samples per occupied bin
    counts = ax.hist2d(x[finite], y[finite], bins=bins, cmap="viridis", cmin=1)[3]
    fig.colorbar(counts, ax=ax, label="samples per bin")
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"{run_title(run)}\n{finite.sum()} samples" +
                 (f" ({(~finite).sum()} not finite, left out)" if (~finite).any() else ""), fontsize="medium")
    fig.savefig(output, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_seed_losses(plt, runs, output):
    """Runs that differ only in their seed: each seed's smoothed loss, overlaid, per loss group."""
    groups = sorted({name for run in runs for name in run.losses})
    fig, axes = plt.subplots(1, len(groups), figsize=(6.4 * len(groups), 4.2), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for run in runs:
            if group in run.losses:
                steps, values = run.losses[group]
                ax.plot(steps, smoothed(values), linewidth=1.2, label=f"seed {run.config.get('seed', '?')}")
        ax.set_xlabel("step")
        ax.set_ylabel(f"loss ({group})")
        ax.grid(True, which="both", alpha=0.3)
        legend_outside(ax)
    fig.suptitle(f"{run_title(runs[0])}\n{len(runs)} seeds", fontsize="medium")
    fig.savefig(output, dpi=110, bbox_inches="tight")
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


def differing_keys(runs):
    """Config keys whose values differ between the runs (name and seed aside: seeds are averaged)."""
    keys = set().union(*(run.config for run in runs)) - {"name", "seed"}
    return sorted(key for key in keys if len({repr(run.config.get(key)) for run in runs}) > 1)


def budget_keys(runs, keys):
    """Of `keys`, those that set a run's NFE: two runs equal in every other key but this one
    have different NFE (a sampler's step count). They lie along the NFE axis; the others make lines."""
    budget = set()
    for key in keys:
        others = [k for k in keys if k != key]
        by_rest = collections.defaultdict(set)
        for run in runs:
            by_rest[tuple(repr(run.config.get(k)) for k in others)].add((repr(run.config.get(key)), run.nfe))
        if any(len({v for v, _ in pairs}) > 1 and len({n for _, n in pairs}) > 1 for pairs in by_rest.values()):
            budget.add(key)
    return budget


def line_label(run, keys, prefix=""):
    shown = ", ".join(f"{key.split('.')[-1]}={run.config.get(key)}" for key in keys)
    return " · ".join(part for part in (prefix, shown) if part)


def metric_points_per_run(runs, metric, x_key):
    """One line per configuration: runs of one model and sampler that differ in anything but
    the x variable (and the seed) are separate lines, so no line zigzags between
    configurations; a line is labelled by its model and sampler and by those differences only."""
    error_names = [metric + suffix for suffix in ERROR_SUFFIXES]
    with_metric = [run for run in runs if metric in run.metrics and not (x_key == "nfe" and run.nfe is None)]
    models = {run.attrs.get("model", "") for run in with_metric}
    families = collections.defaultdict(list)  # (model, sampler) → runs
    for run in with_metric:
        families[(run.attrs.get("model", "?"), run.attrs.get("sampler", "?"))].append(run)
    lines = collections.defaultdict(list)
    for (model, sampler), family in families.items():
        keys = differing_keys(family)
        if x_key == "nfe":
            line_keys = [k for k in keys if k not in budget_keys(family, keys)]
            prefix = sampler if len(models) == 1 else f"{model} · {sampler}"
        else:
            line_keys = [k for k in keys if k != x_key]
            prefix = "" if len(families) == 1 else f"{model} · {sampler}"
        for run in family:
            error = next((run.metrics[name] for name in error_names if name in run.metrics), None)
            x = run.nfe if x_key == "nfe" else run.config[x_key]
            lines[line_label(run, line_keys, prefix)].append((x, run.metrics[metric], error))
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
        errors = np.array([p[2] if p[2] is not None else 0.0 for p in points])
        y = np.array([p[1] for p in points])
        if numeric and len(points) >= 2 and errors.any():  # a band: the spread along the whole line
            line = ax.plot(x, y, marker="o", label=label or None)[0]
            ax.fill_between(x, y - errors, y + errors, color=line.get_color(), alpha=0.2, linewidth=0)
        else:
            ax.errorbar(x, y, yerr=errors if errors.any() else None, marker="o", capsize=3,
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
    if all(p[1] >= 0 for points in lines.values() for p in points):
        ax.set_ylim(bottom=0)  # a non-negative metric: an interval reaching below 0 is cut at 0
    if any(label for label in lines) or floors:
        legend_outside(ax)
    fig.savefig(output, dpi=110, bbox_inches="tight")
    plt.close(fig)


def seed_groups(runs):
    """Runs that differ only in their seed (and name), grouped: {label: [runs]}. The label is
    the experiment's name without a seed suffix."""
    groups = collections.defaultdict(list)
    for run in runs:
        key = tuple(sorted((k, repr(v)) for k, v in run.config.items() if k not in ("name", "seed")))
        groups[key].append(run)
    return {re.sub(r"[-_]seed\d+$", "", group[0].attrs.get("experiment", "run")): group for group in groups.values()}


def evaluation_curve(group, metric, column):
    """(x, mean, 95% half-width or None) of one evaluation value over a group of seeds, the
    k-th evaluations of the seeds together (x: their mean step or training minutes)."""
    series = [run.evals[metric] for run in group if metric in run.evals]
    count = min(len(s[0]) for s in series)
    x = np.mean([s[column][:count] for s in series], axis=0) / (60.0 if column == 2 else 1.0)
    values = np.array([s[1][:count] for s in series])
    if len(series) < 2:
        return x, values[0], None
    t = T_975[len(series) - 2] if len(series) - 1 <= len(T_975) else 1.959964
    return x, values.mean(axis=0), t * values.std(axis=0, ddof=1) / np.sqrt(len(series))


def plot_evaluations(plt, runs, metric, output):
    """One evaluation value against the step and against training minutes, a line per
    configuration (seeds: mean ± 95% CI band), with the real-data floor at the evaluations' N."""
    groups = seed_groups([run for run in runs if metric in run.evals])
    fig, axes = plt.subplots(1, 2, figsize=(12.8, 4.2))
    for ax, column, xlabel in ((axes[0], 0, "step"), (axes[1], 2, "training minutes (evaluations excluded)")):
        for label, group in sorted(groups.items()):
            x, mean, half = evaluation_curve(group, metric, column)
            shown = label if len(group) == 1 else f"{label} ({len(group)} seeds)"
            line = ax.plot(x, mean, marker="o", markersize=3, label=shown)[0]
            if half is not None:
                ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2, linewidth=0)
        floors = sorted({run.eval_floors[metric] for run in runs if metric in run.eval_floors})
        for i, (value, count) in enumerate(floors):
            ax.axhline(value, color="0.4", linestyle="--", linewidth=1, label=f"real data (N={count})" if i < 3 else None)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(True, which="both", alpha=0.3)
    values = [v for run in runs for v in run.evals.get(metric, ((), (), ()))[1]]
    if values and min(values) > 0 and max(values) / min(values) >= 20:
        for ax in axes:
            ax.set_yscale("log")
    legend_outside(axes[1])
    seeds = " (seeds: mean ± 95% CI)" if any(len(g) > 1 for g in groups.values()) else ""
    fig.suptitle(f"{metric} during training{seeds}", fontsize="medium")
    fig.savefig(output, dpi=110, bbox_inches="tight")
    plt.close(fig)


def evaluation_outputs(runs, directory):
    """{value: picture} of the evaluations during training: <run>_eval_<value>.png beside a single
    run, eval_<value>.png in the common folder for several."""
    with_evals = [run for run in runs if run.evals]
    names = sorted({name for run in with_evals for name in run.evals if not name.endswith(ERROR_SUFFIXES)})
    if not with_evals:
        return {}
    if len(with_evals) == 1:
        stem = os.path.splitext(with_evals[0].path)[0]
        base = os.path.join(directory, os.path.basename(stem)) if directory else stem
        return {name: re.sub(r"[^\w./-]", "_", f"{base}_eval_{name}") + ".png" for name in names}
    folder = directory or os.path.commonpath([os.path.dirname(os.path.abspath(r.path)) for r in with_evals])
    return {name: os.path.join(folder, re.sub(r"[^\w.-]", "_", f"eval_{name}") + ".png") for name in names}


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
        if run.points is not None and len(run.points):
            histogram = output[:-len("_loss.png")] + "_samples.png"
            plot_histogram(plt, run, histogram)
            written.append(histogram)
    with_losses = [run for run in runs if run.losses]
    only_seeds = len(runs) >= 2 and not differing_keys(runs) and len({run.config.get("seed") for run in runs}) > 1
    if only_seeds and with_losses:  # repetitions of one experiment: their losses on one picture
        folder = directory or os.path.commonpath([os.path.dirname(os.path.abspath(r.path)) for r in runs])
        output = os.path.join(folder, "loss_over_seeds.png")
        plot_seed_losses(plt, with_losses, output)
        written.append(output)
    for metric, output in evaluation_outputs(runs, directory).items():
        plot_evaluations(plt, [run for run in runs if run.evals], metric, output)
        written.append(output)
    runs = [run for run in runs if run.metrics]  # a run that only trains says nothing about the x axis
    if len(runs) >= 2 and not only_seeds:  # seeds alone give one point: compare's table says it better
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


def write_fake_run(path, sampler, steps, fid, nfe, new_columns, seed, eta=0.0, config_seed=0, points=False):
    """A small run file with what plot_runs reads; fid in the new or the old column order."""
    rng = np.random.default_rng(seed)
    step = np.arange(1, 301, dtype=float)
    with h5py.File(path, "w") as f:
        f.attrs.update({"experiment": os.path.basename(path)[:-3], "model": "ddpm_unet",
                        "objective": "ddpm", "sampler": sampler, "status": "completed"})
        f["config"] = (f'name = "{os.path.basename(path)}"\nseed = {config_seed}\n[sampler]\nplugin = "{sampler}"\n'
                       f'steps = {steps}\neta = {eta}\n[[metrics]]\nplugin = "fid"\n').encode()
        if points:
            f["samples"] = rng.normal(size=(500, 2)).astype(np.float32)
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

        # Two η values along one NFE axis: two lines (one per configuration), never one zigzag.
        eta = []
        for steps in (10, 20):
            for value in (0.0, 1.0):
                path = os.path.join(folder, f"eta{value}_steps{steps}.h5")
                write_fake_run(path, "ddim", steps, fid=50.0 / steps + value, nfe=steps, new_columns=True,
                               seed=steps, eta=value)
                eta.append(path)
        lines = metric_points_per_run([read_run(p) for p in eta], "fid", "nfe")
        assert sorted(lines) == ["ddim · eta=0.0", "ddim · eta=1.0"], sorted(lines)
        assert all(len(points) == 2 for points in lines.values()), lines

        # Three seeds of one experiment: their losses overlaid, no one-point metric plot;
        # 2-D samples: a histogram with axes.
        seeds = []
        for k in range(3):
            path = os.path.join(folder, "seeds", f"fx-seed{k}.h5")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_fake_run(path, "ddim", 10, fid=5.0 + k, nfe=10, new_columns=True, seed=k, config_seed=k,
                           points=k == 0)
            seeds.append(path)
        for k, path in enumerate(seeds):  # evaluations during training: FID falling over 4 evaluations
            with h5py.File(path, "a") as f:
                steps = np.array([100.0, 200.0, 300.0, 400.0])
                f["eval/fid"] = np.stack([steps, 40.0 / steps * 100 + k, steps * 0.01 + k], 1)
                f["eval/fid"].attrs["columns"] = TRAIN_COLUMNS
                f["eval_floor/fid"] = np.array([[0.0, 2.5, 0.0]])
                f["eval_floor/fid"].attrs["count"] = 64
        x, mean, half = evaluation_curve([read_run(p) for p in seeds], "fid", 2)
        assert np.allclose(x, np.array([1.0, 2.0, 3.0, 4.0]) / 60.0 + 1.0 / 60.0), x  # mean training minutes
        assert np.allclose(mean, 40.0 / np.array([1.0, 2.0, 3.0, 4.0]) + 1.0), mean  # seeds add 0, 1, 2
        assert np.allclose(half, T_975[1] * 1.0 / np.sqrt(3)), half  # std of (0, 1, 2) is 1
        names = [os.path.basename(p) for p in plot_runs(seeds)]
        assert "eval_fid.png" in names, names
        assert "loss_over_seeds.png" in names and "fx-seed0_samples.png" in names, names
        assert not any(name.startswith("fid_vs") for name in names), names
        written += names
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
