#!/usr/bin/env python3
"""genfw benchmark harness: one command, one Markdown table (bench/results.md).

    python3 bench/run.py [--build BUILD] [--out bench/results.md] [--quick]

Runs, each in its own process so that peak memory is per measurement:
  * genfw_bench (C++, built by CMake into BUILD) — the runner's training step (genfw::Trainer
    with the experiment's dataset and objective plugins) against a bare LibTorch loop on the
    same model instance and batch, and sampling as the runner does it;
  * bench/pytorch_bench.py (Python PyTorch, same 1.13 build) — the same architectures,
    losses, optimizer and samplers, asserting equal parameter counts;
  * a float32 GEMM in both, for the machine's attainable throughput.
Every number written comes from these runs; nothing is copied from elsewhere. See
bench/README.md for the columns.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each case: the experiment, the training batch, steps per timed block (block) and timed
# blocks (reps), and the sampler settings timed (label, --set overrides). Conv-model sampling
# runs fewer sampler steps than the experiment: per-step cost is what is compared, and the
# table gives the NFE and the time per NFE. The toy MLP is sampled at the experiment's batch
# of 2000 (GEMM-bound) and at 64 samples (where per-call overhead dominates).
CASES = [
    dict(key="toy2d", title="score MLP, toy 2-D (score_toy2d)", experiment="experiments/score_toy2d.toml",
         batch=128, block=100, reps=15, conv=False, sample_reps=3,
         samples=[("2000 samples (the experiment's)", []),
                  ("64 samples", ["sampler.num_samples=64", "sampler.batch_size=64"])]),
    dict(key="ncsn", title="NCSN ngf 8, Fashion-MNIST (ncsn_fashion)", experiment="experiments/ncsn_fashion.toml",
         batch=32, block=3, reps=5, conv=True, sample_reps=3,
         samples=[("64 samples, 2 steps per level", ["sampler.steps_per_level=2"])]),
    dict(key="unet_fashion", title="DDPM U-Net ch 32, Fashion-MNIST (ddpm_fashion)",
         experiment="experiments/ddpm_fashion.toml", batch=32, block=3, reps=5, conv=True, sample_reps=3,
         samples=[("64 samples, DDIM 10 steps", ["sampler.num_inference_steps=10"])]),
    dict(key="unet_cifar", title="DDPM U-Net ch 128, CIFAR-10 (ddpm_cifar)", experiment="experiments/ddpm_cifar.toml",
         batch=4, block=1, reps=3, conv=True, sample_reps=0, samples=[]),
]


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def find_torch_python():
    for exe in [sys.executable, "/usr/bin/python3"]:
        if exe and subprocess.run([exe, "-c", "import torch"], capture_output=True).returncode == 0:
            return exe
    sys.exit("bench: no Python with torch found; install it with `apt-get install -y python3-torch`")


class CpuMeter:
    """CPU time the rest of the machine used while we measured, in cores (from /proc/stat,
    minus our own children's CPU time): how busy the machine was besides the benchmark."""

    def __init__(self):
        self.tick = os.sysconf("SC_CLK_TCK")
        self.start = self._sample()

    def _sample(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        busy = (sum(v) - v[3] - v[4]) / self.tick  # everything but idle and iowait (steal counts)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.monotonic(), busy, ru.ru_utime + ru.ru_stime

    def others_cores(self):
        (t0, b0, c0), (t1, b1, c1) = self.start, self._sample()
        return max(0.0, ((b1 - b0) - (c1 - c0)) / max(t1 - t0, 1e-9))


EXTRA_ENV = {}  # --env KEY=VALUE, given to both sides

# genfw's settings one at a time turned off (genfw_bench flags), and bf16 autocast on
# (--set overrides), each measured beside the defaults in one run (section 5).
GENFW_VARIANTS = [
    ("freed memory returned", ["--keep-freed-memory", "0"], []),
    ("subnormals kept", ["--flush-denormals", "0"], []),
    ("bf16 autocast", [], ['train.precision="bf16"', 'sampler.precision="bf16"']),
]
# Python given genfw's process settings: flush-to-zero, and glibc malloc tuned as
# genfw's mallopt calls tune it (framework/host/src/process.cpp).
PYTHON_SAME_SETTINGS_ENV = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:"
                                              "glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864"}


def run_json(command, what, env=None):
    log("  " + what + ": " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in command))
    meter = CpuMeter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, **EXTRA_ENV, **(env or {})))
    if done.returncode != 0:
        sys.exit(f"bench: {what} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["others_cores"] = meter.others_cores()
    return result


def write_random_cifar(folder, records=512):
    """CIFAR-10 binary batches of random pixels (the real files when present are used instead)."""
    import random
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(bytes(rng.getrandbits(8) % (10 if i % 3073 == 0 else 256) for i in range(records * 3073)))


def without_metrics(experiment, folder):
    """A copy of the experiment without its [[metrics]] tables: the bench times training and
    sampling only, and so runs on builds without the metric plugins."""
    out, skipping = [], False
    with open(os.path.join(ROOT, experiment)) as f:
        for line in f:
            head = line.strip()
            if head.startswith("["):
                skipping = head == "[[metrics]]"
            if not skipping:
                out.append(line)
    path = os.path.join(folder, os.path.basename(experiment))
    with open(path, "w") as f:
        f.writelines(out)
    return path


def package_version(name):
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "not a Debian package here"


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = ", ".join(x for x in ["avx2", "fma", "avx512f"] if x in have)
                break
    blas = "unknown"
    try:
        blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    except OSError:
        pass
    return model, flags, blas


def fmt_ms(s):
    return f"{s * 1e3:.3g}" if s < 0.1 else f"{s * 1e3:.0f}"


def fmt_s(s):
    return f"{s:.3g}"


def verdict(ratio, target, tolerance=0.0):
    if ratio >= target:
        return "met"
    return "within noise" if ratio >= target * (1 - tolerance) else "**not met**"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.environ.get("BUILD", "build"), help="CMake build folder (default: build)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results.md"))
    p.add_argument("--quick", action="store_true", help="fewer repetitions (development; noisier)")
    p.add_argument("--only", default="", help="comma-separated case keys (toy2d, ncsn, unet_fashion, unet_cifar)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both sides (default: cores)")
    p.add_argument("--main-job", action="append", default=[], metavar="LABEL=DIR[@WALL_SECONDS]",
                   help="a main-job output folder (runner experiments/benchmark_fashion.toml --out DIR) to "
                        "tabulate per phase, with its measured wall time (repeatable: before / after)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment for both sides, e.g. OMP_WAIT_POLICY=PASSIVE (repeatable)")
    args = p.parse_args()
    for assignment in args.env:
        key, _, value = assignment.partition("=")
        EXTRA_ENV[key] = value
    # The runner restarts itself with GOMP_SPINCOUNT=1000 unless a policy is set
    # (framework/runner/main.cpp); genfw_bench does not go through it, so both sides get it here.
    if not any(k in os.environ or k in EXTRA_ENV for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")):
        EXTRA_ENV["GOMP_SPINCOUNT"] = "1000"
    build = os.path.abspath(os.path.join(ROOT, args.build) if not os.path.isabs(args.build) else args.build)
    bench = os.path.join(build, "genfw_bench")
    if not os.access(bench, os.X_OK):
        sys.exit(f"bench: {bench} not found; build it first: cmake --build {args.build} --target genfw_bench")
    python = find_torch_python()
    threads = args.threads
    work = os.path.join(build, "bench-data")
    os.makedirs(work, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    total_meter = CpuMeter()
    common = ["--threads", str(threads)]

    # Data: the experiments' own files when present, else random files of the same format.
    data_sets = {}
    if not os.path.isdir(os.path.join(ROOT, "data", "cifar-10-batches-bin")):
        folder = os.path.join(work, "cifar-10-batches-bin")
        if not os.path.exists(os.path.join(folder, "test_batch.bin")):
            write_random_cifar(folder)
        data_sets["unet_cifar"] = [f'data.path="{folder}"']
    notes_data = ("CIFAR-10: random pixels in the CIFAR binary format (512 images per batch file; the real "
                  "files were not present)" if "unet_cifar" in data_sets else "CIFAR-10: the real files")

    log("GEMM")
    gemm_c = run_json([bench, "gemm", "--n", "2048", "--reps", "5"] + common, "genfw_bench gemm")
    gemm_py = run_json([python, "bench/pytorch_bench.py", "gemm", "--n", "2048", "--reps", "5"] + common,
                       "pytorch gemm")

    results = []
    only = set(filter(None, args.only.split(",")))
    for case in CASES:
        if only and case["key"] not in only:
            continue
        log(case["title"])
        experiment = without_metrics(case["experiment"], work)
        reps = 2 if args.quick else case["reps"]
        block = max(1, case["block"] // 4) if args.quick else case["block"]
        sets = [f"train.batch_size={case['batch']}"] + data_sets.get(case["key"], [])
        set_args = [a for s in sets for a in ("--set", s)]
        resolved = os.path.join(work, case["key"] + "_train.toml")
        r = dict(case=case)
        r["c_train"] = run_json([bench, "train", experiment, "--block", str(block), "--reps", str(reps),
                                 "--resolved", resolved] + set_args + common, "genfw train")
        r["c_train_alone"] = run_json([bench, "train", experiment, "--block", "1", "--reps", "1", "--path", "runner"]
                                      + set_args + common, "genfw train, trainer alone (memory)")
        params = str(r["c_train"]["parameters"])
        py_train = [python, "bench/pytorch_bench.py", "train", resolved, "--expect-params", params,
                    "--block", str(block), "--reps", str(reps)] + common
        r["py_train"] = run_json(py_train, "pytorch train")
        r["py_train_same"] = run_json(py_train + ["--flush-denormal"], "pytorch train, genfw's process settings",
                                      PYTHON_SAME_SETTINGS_ENV)
        r["c_train_variants"] = [
            run_json([bench, "train", experiment, "--block", str(block), "--reps", str(reps), "--path", "runner"]
                     + set_args + [a for s in sets_of_variant for a in ("--set", s)] + common + flags,
                     "genfw train, " + name)
            for name, flags, sets_of_variant in GENFW_VARIANTS]
        r["samples"] = []
        for i, (label, sample_sets) in enumerate(case["samples"]):
            sreps = 1 if args.quick else case["sample_reps"]
            sets = sample_sets + data_sets.get(case["key"], [])
            set_args = [a for s in sets for a in ("--set", s)]
            resolved = os.path.join(work, f"{case['key']}_sample{i}.toml")
            c = run_json([bench, "sample", experiment, "--reps", str(sreps), "--resolved", resolved]
                         + set_args + common, "genfw sample")
            py_sample = [python, "bench/pytorch_bench.py", "sample", resolved, "--expect-params", params,
                         "--reps", str(sreps)] + common
            py = run_json(py_sample, "pytorch sample")
            py_same = run_json(py_sample + ["--flush-denormal"], "pytorch sample, genfw's process settings",
                               PYTHON_SAME_SETTINGS_ENV)
            variants = [run_json([bench, "sample", experiment, "--reps", str(sreps)] + set_args
                                 + [a for s in sets_of_variant for a in ("--set", s)] + common + flags,
                                 "genfw sample, " + name)
                        for name, flags, sets_of_variant in GENFW_VARIANTS]
            r["samples"].append(dict(label=label, c=c, py=py, py_same=py_same, variants=variants))
        results.append(r)

    others = total_meter.others_cores()
    finished = datetime.datetime.now(datetime.timezone.utc)
    write_markdown(args.out, results, gemm_c, gemm_py, threads, python, others, started, finished, notes_data,
                   args.quick, [main_job_phases(spec) for spec in args.main_job])
    log("wrote " + os.path.relpath(args.out, ROOT))


def main_job_phases(spec):
    """Seconds per phase of a main-job folder, read from its run files (/timing, and the
    wall_seconds column of /metrics and /floor rows, which count from the start of their phase)."""
    label, _, rest = spec.partition("=")
    folder, _, wall = rest.partition("@")
    py = find_torch_python()
    script = r"""
import glob, json, os, sys, h5py
out = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*", "*.h5"))):
    with h5py.File(path, "r") as f:
        t = f["timing"]
        last = lambda g: max((float(f[g][k][-1, 2]) for k in f[g]), default=0.0) if g in f else 0.0
        out[os.path.basename(os.path.dirname(path))] = dict(
            train=float(t["train_seconds"][()]) if "train_seconds" in t else 0.0,
            sample=float(t["sample_seconds"][()]) if "sample_seconds" in t else 0.0,
            metrics=last("metrics"), floor=last("floor"))
print(json.dumps(out))
"""
    runs = json.loads(subprocess.run([py, "-c", script, folder], capture_output=True, text=True, check=True).stdout)
    return dict(label=label, folder=folder, wall=float(wall) if wall else None, runs=runs)


def write_markdown(path, results, gemm_c, gemm_py, threads, python, others, started, finished, notes_data, quick,
                   main_jobs=()):
    cpu, flags, blas = machine()
    py_version = subprocess.run([python, "-c", "import torch, platform; print(torch.__version__, platform.python_version())"],
                                capture_output=True, text=True).stdout.split()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "-uno"], capture_output=True, text=True).stdout.strip()
    cuda = subprocess.run([python, "-c", "import torch; print(torch.cuda.is_available())"], capture_output=True,
                          text=True).stdout.strip() == "True"
    gpu = "no GPU column: " + ("`nvidia-smi` not found" if shutil.which("nvidia-smi") is None else
                               "a GPU is present; run genfw_bench / pytorch_bench.py with --device cuda" if cuda
                               else "this PyTorch build has no CUDA")
    L = []
    L.append("# genfw benchmark results")
    L.append("")
    L.append(f"Written by `python3 bench/run.py` on {finished:%Y-%m-%d %H:%M} UTC "
             f"({(finished - started).total_seconds() / 60:.1f} min{', --quick' if quick else ''}); "
             f"commit {commit}{' with local changes' if dirty else ''}.")
    L.append("")
    L.append("| machine | |")
    L.append("| --- | --- |")
    L.append(f"| CPU | {cpu} ({flags}), {os.cpu_count()} cores, {platform.machine()} |")
    L.append(f"| threads | {threads} in both (genfw: the runner's `configure_threads`; Python: `torch.set_num_threads`) |")
    L.append(f"| LibTorch (genfw) | {gemm_c['torch']} (libtorch-dev {package_version('libtorch-dev')}), "
             f"BLAS {blas} |")
    L.append(f"| PyTorch (Python) | {py_version[0] if py_version else '?'} (python3-torch "
             f"{package_version('python3-torch')}), Python {py_version[1] if len(py_version) > 1 else '?'} |")
    L.append(f"| device | cpu ({gpu}) |")
    environment = dict(os.environ, **EXTRA_ENV)
    env = ", ".join(f"{k}={environment[k]}" for k in sorted(environment)
                    if k.startswith(("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "KMP_"))) or "none set"
    L.append(f"| threading environment | {env} (both sides; GOMP_SPINCOUNT=1000 is what the runner sets "
             "for itself when no OpenMP wait policy is given) |")
    L.append(f"| other load | {others:.2f} cores busy with other processes on average while the harness ran |")
    L.append("")
    if others > 0.1 * os.cpu_count():
        L.append(f"> **Load caveat:** the machine was shared: other processes kept {others:.2f} of its "
                 f"{os.cpu_count()} cores busy on average during these measurements (per-case figures below). "
                 "Absolute times are inflated and ratios noisy; re-run `make bench` on a quiet machine.")
        L.append("")
    L.append("Medians over repeated timed blocks after a warm-up block; training blocks are several "
             "steps (times are per step). Data: the experiments' dataset files (" + notes_data + "). "
             "Where a target is not met, bench/README.md (\"Where the targets stand\") says what blocks it "
             "and what was tried.")
    L.append("")

    # 1. Framework overhead.
    L.append("## 1. Framework overhead: the runner's training step vs a bare LibTorch loop")
    L.append("")
    L.append("Same model instance (built through the plugin registry), same optimizer, clipping, warm-up "
             "and EMA settings, same process; blocks of bare steps and of trainer steps alternate. "
             "Target: overhead ≤ 2%.")
    L.append("")
    L.append("| model | batch | steps × blocks | bare LibTorch step ms | genfw runner step ms | overhead | ≤ 2% | others' load |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        c = r["c_train"]
        overhead = c["runner_step_s"] / c["bare_step_s"] - 1
        L.append(f"| {r['case']['title']} | {c['batch_size']} | {c['block']} × {len(c['runner_blocks'])} | "
                 f"{fmt_ms(c['bare_step_s'])} | {fmt_ms(c['runner_step_s'])} | {overhead * 100:+.1f}% | "
                 f"{'met' if overhead <= 0.02 else '**not met**'} | {c['others_cores']:.2f} |")
    L.append("")

    # 2. genfw vs Python.
    L.append("## 2. genfw vs Python PyTorch (same architecture, same LibTorch 1.13)")
    L.append("")
    L.append("Speed-up = Python time / genfw time (> 1: genfw faster). Targets: ≥ 1 on the conv models, "
             "≥ 3 on the small-MLP sampling loop. Both fetch each training batch from the dataset in memory; "
             "sampling runs without autograd in both (genfw: the sampler under the runner's guards; Python: "
             "`torch.inference_mode()`).")
    L.append("")
    L.append("| model | measurement | genfw | Python | speed-up | target | others' load (genfw / Py) |")
    L.append("| --- | --- | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        case, c, py = r["case"], r["c_train"], r["py_train"]
        ratio = py["step_s"] / c["runner_step_s"]
        target = "≥ 1: " + verdict(ratio, 1.0, 0.02) if case["conv"] else "(none)"
        L.append(f"| {case['title']} | training step, batch {c['batch_size']} (ms) | {fmt_ms(c['runner_step_s'])} | "
                 f"{fmt_ms(py['step_s'])} | {ratio:.2f}× | {target} | {c['others_cores']:.2f} / {py['others_cores']:.2f} |")
        for sample in r["samples"]:
            cs, ps = sample["c"], sample["py"]
            assert cs["nfe"] == ps["nfe"], f"NFE differ: {cs['nfe']} vs {ps['nfe']}"
            ratio = ps["sample_s"] / cs["sample_s"]
            target = ("≥ 1: " + verdict(ratio, 1.0, 0.02)) if case["conv"] else ("≥ 3: " + verdict(ratio, 3.0))
            L.append(f"| {case['title']} | sampling: {sample['label']}, {cs['nfe']} NFE, seconds "
                     f"({fmt_ms(cs['sample_s'] / max(cs['nfe'], 1))} / {fmt_ms(ps['sample_s'] / max(ps['nfe'], 1))} ms per NFE)"
                     f"{'' if cs['finite'] and ps['finite'] else ' **non-finite samples**'} | "
                     f"{fmt_s(cs['sample_s'])} | {fmt_s(ps['sample_s'])} | {ratio:.2f}× | {target} | "
                     f"{cs['others_cores']:.2f} / {ps['others_cores']:.2f} |")
    L.append("")
    L.append("| model | parameters genfw | parameters Python | equal |")
    L.append("| --- | ---: | ---: | --- |")
    for r in results:
        a, b = r["c_train"]["parameters"], r["py_train"]["parameters"]
        L.append(f"| {r['case']['title']} | {a:,} | {b:,} | {'yes' if a == b else '**no**'} |")
    L.append("")

    # 3. Throughput.
    L.append("## 3. Achieved GFLOP/s of the training step vs measured GEMM throughput")
    L.append("")
    L.append(f"GEMM: float32 {gemm_c['n']}×{gemm_c['n']} `mm`, median of {len(gemm_c['runs'])}: "
             f"**{gemm_c['gflops']:.1f} GFLOP/s** in C++, **{gemm_py['gflops']:.1f} GFLOP/s** in Python. "
             "Training FLOPs = 3 × forward FLOPs of convolutions, linear layers and attention products "
             "(2 per multiply-add), counted by forward hooks in the Python model.")
    L.append("")
    L.append("| model | batch | GFLOP per step | genfw GFLOP/s | Python GFLOP/s | genfw / C++ GEMM |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        c, py = r["c_train"], r["py_train"]
        g = py["train_flops"] / 1e9
        L.append(f"| {r['case']['title']} | {c['batch_size']} | {g:.3g} | {g / c['runner_step_s']:.1f} | "
                 f"{g / py['step_s']:.1f} | {g / c['runner_step_s'] / gemm_c['gflops'] * 100:.0f}% |")
    L.append("")

    # 4. Memory.
    L.append("## 4. Peak resident memory (MiB, getrusage max RSS of each process)")
    L.append("")
    L.append("Each process loads the experiment's dataset as the runner does (Fashion-MNIST: 47 MiB of "
             "uint8 pixels). genfw training: a process running the trainer alone (no bare loop).")
    L.append("")
    L.append("| model | measurement | genfw | Python | Python / genfw |")
    L.append("| --- | --- | ---: | ---: | ---: |")
    for r in results:
        rows = [(f"training, batch {r['c_train']['batch_size']}", r["c_train_alone"], r["py_train"])]
        rows += [("sampling: " + s["label"], s["c"], s["py"]) for s in r["samples"]]
        for label, c, py in rows:
            L.append(f"| {r['case']['title']} | {label} | {c['peak_rss_mib']:.0f} | {py['peak_rss_mib']:.0f} | "
                     f"{py['peak_rss_mib'] / c['peak_rss_mib']:.2f} |")
    L.append("")
    # 5. Settings on and off.
    L.append("## 5. Each setting on and off, and Python with and without genfw's settings")
    L.append("")
    L.append("Time of the genfw runner step or sampler call with its defaults (flush-to-zero and "
             "denormals-are-zero on every thread, freed memory kept in the process, float32), then with one "
             "setting changed: freed memory returned to the kernel (`--release-freed-memory`), subnormals "
             "computed (`--keep-denormals`), bf16 autocast (`precision = \"bf16\"`); the ratio is that time "
             "over the default's (> 1: the default is faster). Python as its users run it, and Python given "
             "genfw's process settings (`torch.set_flush_denormal(True)`, `GLIBC_TUNABLES` as genfw's "
             "mallopt); the ratios are Python's time over genfw's default (> 1: genfw faster).")
    L.append("")
    L.append("| model | measurement | genfw default | " + " | ".join(n for n, _, _ in GENFW_VARIANTS)
             + " | Python | Python, genfw's settings | Python / genfw | Python with genfw's settings / genfw |")
    L.append("| --- | --- | ---: | " + " | ".join("---:" for _ in GENFW_VARIANTS) + " | ---: | ---: | ---: | ---: |")

    def settings_row(title, label, base, variants, py, py_same, fmt):
        cells = [fmt(base)] + [f"{fmt(v)} ({v / base:.2f}×)" for v in variants]
        L.append(f"| {title} | {label} | " + " | ".join(cells) + f" | {fmt(py)} | {fmt(py_same)} | "
                 f"{py / base:.2f}× | {py_same / base:.2f}× |")

    for r in results:
        case, c = r["case"], r["c_train"]
        settings_row(case["title"], f"training step, batch {c['batch_size']} (ms)", c["runner_step_s"],
                     [v["runner_step_s"] for v in r["c_train_variants"]], r["py_train"]["step_s"],
                     r["py_train_same"]["step_s"], fmt_ms)
        for sample in r["samples"]:
            settings_row(case["title"], f"sampling: {sample['label']}, {sample['c']['nfe']} NFE (s)",
                         sample["c"]["sample_s"], [v["sample_s"] for v in sample["variants"]],
                         sample["py"]["sample_s"], sample["py_same"]["sample_s"], fmt_s)
    L.append("")
    if main_jobs:
        write_main_job_section(L, main_jobs)
    L.append("<details><summary>raw timings (seconds)</summary>")
    L.append("")
    L.append("```json")
    raw = {"gemm_cpp": gemm_c, "gemm_python": gemm_py}
    for r in results:
        raw[r["case"]["key"]] = {k: v for k, v in r.items() if k != "case"}
    L.append(json.dumps(raw, indent=1))
    L.append("```")
    L.append("</details>")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def write_main_job_section(L, jobs):
    L.append("## 6. The main job's wall time per phase")
    L.append("")
    L.append("`runner experiments/benchmark_fashion.toml` with an empty cache (the in-domain classifier is "
             "trained and the reference scored in the first run's metrics phase), read from the run files; "
             "wall = the command's measured wall time (the rest: start-up, data loading, PNGs, the table).")
    L.append("")
    phases = ("train", "sample", "metrics", "floor")
    L.append("| job | experiment | " + " | ".join(f"{p} s" for p in phases) + " | sum s |")
    L.append("| --- | --- | " + " | ".join("---:" for _ in phases) + " | ---: |")
    for job in jobs:
        for name, run in job["runs"].items():
            L.append(f"| {job['label']} | {name} | " + " | ".join(f"{run[p]:.1f}" for p in phases)
                     + f" | {sum(run[p] for p in phases):.1f} |")
        totals = {p: sum(run[p] for run in job["runs"].values()) for p in phases}
        wall = f", wall **{job['wall'] // 60:.0f} min {job['wall'] % 60:.0f} s**" if job["wall"] else ""
        L.append(f"| {job['label']} | **all**{wall} | " + " | ".join(f"**{totals[p]:.1f}**" for p in phases)
                 + f" | **{sum(totals.values()):.1f}** |")
    if len(jobs) > 1 and all(j["wall"] for j in jobs):
        first, last = jobs[0], jobs[-1]
        L.append("")
        L.append(f"Wall time {last['label']} / {first['label']}: {last['wall'] / first['wall']:.2f} "
                 f"({(1 - last['wall'] / first['wall']) * 100:.0f}% less).")
    L.append("")


if __name__ == "__main__":
    main()
