#!/usr/bin/python3
"""scaling_model.py: the written model of data-parallel training on many machines (bench/README.md, "Scaling").

For each built-in model: the gradient (4 bytes per trainable parameter) is summed with one ring allreduce per
step, costing  t_comm = 2 (p - 1) / p * S / bandwidth + 2 (p - 1) * latency  for p ranks; the compute of a step
is b * c for b samples per rank, c = measured seconds per training sample (forward + backward + Adam) on one
core. Without overlap, communication stays under 10% of a step when b >= 9 * t_comm / c.

    scaling_model.py --measure CNNKIT   times `cnnkit bench ARCH --threads 1` (process CPU time, so other jobs
                                        on the machine do not inflate it) and prints the tables
    scaling_model.py                    prints the tables from the per-sample times recorded below
"""
import argparse
import os
import resource
import subprocess

# name, cnnkit bench arguments, trainable parameters
MODELS = [
    ("mlp 1x28x28", ["mlp", "--input", "1x28x28"], 669706),
    ("cnn 1x28x28", ["cnn", "--input", "1x28x28"], 241898),
    ("cnn 1x128x128", ["cnn", "--input", "1x128x128"], 241898),
    ("fusion 2x1x128x128", ["fusion", "--input", "1x128x128"], 190942),
    ("mobilenet_v1 3x224x224", ["mobilenet_v1", "--input", "3x224x224", "--classes", "1000"], 4231976),
    ("mobilenet_v2 3x224x224", ["mobilenet_v2", "--input", "3x224x224", "--classes", "1000"], 3504872),
]
# Seconds of CPU per training sample, 1 thread, batch 32, measured with --measure on the development machine
# (see bench/README.md for the date and the machine).
RECORDED = {
    "mlp 1x28x28": 0.159e-3,
    "cnn 1x28x28": 1.531e-3,
    "cnn 1x128x128": 22.027e-3,
    "fusion 2x1x128x128": 36.840e-3,
    "mobilenet_v1 3x224x224": 63.065e-3,
    "mobilenet_v2 3x224x224": 56.809e-3,
}
LINKS_GBIT = [1, 10, 100]
RANKS = [8, 32, 256]
LATENCY_S = 25e-6  # per ring step: TCP over Ethernet; RDMA fabrics are ~2-5 us


def cpu_of(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(cnnkit, args, batch=32):
    heavy = "mobilenet" in args[0] or "fusion" in args[0]
    few, many = (1, 3) if heavy else (3, 13)
    base = [cnnkit, "bench", *args, "--batch", str(batch), "--threads", "1", "--warmup", "1"]
    t_few = cpu_of(base + ["--steps", str(few)])
    t_many = cpu_of(base + ["--steps", str(many)])
    return (t_many - t_few) / (many - few) / batch  # set-up and warm-up cancel out


def ring_seconds(n_params, ranks, gbit):
    size = 4.0 * n_params
    return 2.0 * (ranks - 1) / ranks * size / (gbit * 1e9 / 8) + 2.0 * (ranks - 1) * LATENCY_S


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure", metavar="CNNKIT")
    args = ap.parse_args()
    per_sample = dict(RECORDED)
    if args.measure:
        for name, bench_args, _ in MODELS:
            per_sample[name] = measure(args.measure, bench_args)
            print(f"# measured {name}: {per_sample[name] * 1e3:.3f} ms CPU per training sample", flush=True)
    cols = [(g, p) for g in LINKS_GBIT for p in RANKS]
    head = " | ".join(f"{g}G p={p}" for g, p in cols)
    print("\nRing allreduce of the gradient per step (ms), latency %.0f us per hop:\n" % (LATENCY_S * 1e6))
    print(f"| model | params | MB | {head} |")
    print("|---|---:|---:|" + "---:|" * len(cols))
    for name, _, n in MODELS:
        cells = " | ".join(f"{ring_seconds(n, p, g) * 1e3:.2f}" for g, p in cols)
        print(f"| {name} | {n:,} | {4 * n / 1e6:.2f} | {cells} |")
    print("\nCompute per step at 32 samples per rank (1 core) and the smallest per-rank batch for which the")
    print("allreduce stays under 10% of the step (no overlap), by link speed and rank count:\n")
    print(f"| model | ms/sample | step ms (b=32) | {head} |")
    print("|---|---:|---:|" + "---:|" * len(cols))
    for name, _, n in MODELS:
        c = per_sample.get(name)
        if c is None:
            continue
        cells = " | ".join(str(max(1, int(-(-9 * ring_seconds(n, p, g) // c)))) for g, p in cols)
        print(f"| {name} | {c * 1e3:.3f} | {32 * c * 1e3:.0f} | {cells} |")


if __name__ == "__main__":
    main()
