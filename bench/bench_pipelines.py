"""Seconds per training epoch of the chapter's standard work through the usual
tutorial code, d2l.Trainer, our command line, a plain float32 stacked trainer, and
our engine (dl.sweep with 1-64 models stacked), all in one run on one machine.

    python bench/bench_pipelines.py --out bench/RESULTS.md      (make bench)

The work: FashionMNIST, MLP 784-256-256-10, dropout 0.5/0.5, SGD lr 0.1.
  (a) the usual tutorial code: torchvision dataset with ToTensor, DataLoader with
      batch 32 and shuffling, .to(device) per batch;
  (b) d2l.Trainer as D2L's dropout section uses it (batch 256);
  (c) python -m dropout_lab.train (one model on the engine, batch 256);
  (d) a plain float32 stacked trainer (bench/plain_stacked.py: baddbmm, autograd,
      16-bit integer masks), 16 models;
  (e) dl.sweep at its default precision, 16 models; then K = 1, 4, 16, 64, in each
      precision this machine runs fast.
Absolute seconds differ between machines of the same kind, so the report gives
ratios measured in the same run, and efficiency as a fraction of this machine's
own float32 and bfloat16 matmul throughput, also measured in the same run.
"""
import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import dropout_lab as dl
from dropout_lab import engine
from dropout_lab.data import default_data_dir, locate

sys.path.insert(0, str(Path(__file__).parent))
import plain_stacked  # noqa: E402  (the baseline beside this file)

GFLOP_PER_EPOCH = 60000 * (3 * 2 * (784 * 256 + 256 * 256 + 256 * 10) - 2 * 784 * 256) / 1e9


def matmul_gflops(device, dtype=torch.float32, size=1024, seconds=1.0):
    """Throughput of a size x size matmul in `dtype`, GFLOP/s."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    a @ b
    sync(device)
    start, repeats = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        a @ b
        repeats += 1
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def torchvision_root():
    """A folder laid out as torchvision expects (FashionMNIST/raw, uncompressed).
    It is named data/ inside a folder of its own because d2l reads '../data'."""
    root = default_data_dir() / "d2l" / "data"
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for path in locate().values():
        target = raw / path.name.removesuffix(".gz")
        if not target.exists():
            with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as f, \
                    open(target, "wb") as out:
                shutil.copyfileobj(f, out)
    return root


def plain_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))


def tutorial_pipeline(epochs, device, seed):
    """(a): the code most tutorials show."""
    import torchvision
    from torchvision import transforms
    torch.manual_seed(seed)
    root = torchvision_root()
    train_set = torchvision.datasets.FashionMNIST(root, train=True, transform=transforms.ToTensor())
    test_set = torchvision.datasets.FashionMNIST(root, train=False, transform=transforms.ToTensor())
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=32, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=256)
    model = plain_mlp().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            loss = nn.functional.cross_entropy(model(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        sync(device)
        seconds.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        correct = sum((model(X.to(device)).argmax(1) == y.to(device)).sum().item()
                      for X, y in test_loader)
    return seconds, correct / len(test_set)


def d2l_pipeline(epochs, device, seed):
    """(b): d2l.Trainer with D2L's concise dropout MLP and its FashionMNIST loader."""
    import matplotlib
    matplotlib.use("Agg")
    from d2l import torch as d2l

    class DropoutMLP(d2l.Classifier):
        def __init__(self, lr):
            super().__init__()
            self.save_hyperparameters()
            self.net = plain_mlp()

    torch.manual_seed(seed)
    workdir = torchvision_root().parent / "work"   # d2l's FashionMNIST reads ../data
    workdir.mkdir(exist_ok=True)
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        data = d2l.FashionMNIST(batch_size=256)
    finally:
        os.chdir(cwd)
    model = DropoutMLP(lr=0.1)
    trainer = d2l.Trainer(max_epochs=epochs, num_gpus=1 if device.type == "cuda" else 0)
    start = time.perf_counter()
    trainer.fit(model, data)
    seconds = (time.perf_counter() - start) / epochs
    model.eval()
    model.to(device)
    with torch.no_grad():
        correct = sum((model(X.to(device)).argmax(1) == y.to(device)).sum().item()
                      for X, y in data.val_dataloader())
    return [seconds] * epochs, correct / 10000


def cli_pipeline(epochs, device):
    """(c): the command line, as a user runs it; seconds per epoch from its --json."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "history.json"
        subprocess.run([sys.executable, "-m", "dropout_lab.train", "--epochs", str(epochs),
                        "--device", device.type, "--quiet", "--json", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        history = json.loads(out.read_text())["history"]
    return history["seconds"], history["test_acc"][-1]


def sweep_seconds(models, epochs, device, data, precision="auto"):
    """The standard work through dl.sweep, `models` seeds in one stack: seconds per
    epoch per model, each model's final test accuracy, and the precision used."""
    table = dl.sweep([{"epochs": epochs}], models, data, device=device, progress=False,
                     precision=precision)
    per_epoch = table.groupby("epoch").seconds_per_model.first()
    return per_epoch.tolist(), table[table.epoch == epochs].test_acc.tolist(), \
        table.attrs["precision"]


def alternating_rounds(rounds, models, device, data, epochs=2):
    """Per model, the plain stacked trainer (d) against dl.sweep (e), in alternating
    rounds: a machine's speed drifts within a run (other load, clocks), so each
    round's ratio compares neighbours."""
    ratios = []
    for r in range(rounds):
        plain, _ = plain_stacked.train(models, data, epochs=epochs, seed=100 + r)
        ours, _, _ = sweep_seconds(models, epochs, device, data)
        ratios.append(statistics.mean(plain) / statistics.mean(ours))
        print(f"round {r + 1}: (d) / (e), per model: {ratios[-1]:.2f}x", flush=True)
    return ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs for (a), (b), (c)")
    parser.add_argument("--sweep-models", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--sweep-epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating rounds of (d) and (e) for their ratio")
    parser.add_argument("--skip", nargs="*", default=[], choices=["tutorial", "d2l"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="bench/RESULTS.md")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the report from the .json beside --out, measuring nothing")
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads(Path(args.out).with_suffix(".json").read_text())
        return write_report(saved["rows"], saved["matmul_gflops"], saved["fast_bf16"],
                            saved["alternating_ratios_16"], saved["device"], args,
                            saved["measured"])
    device = dl.pick_device(args.device)
    data = dl.load_fashion_mnist(device=device)
    rows, peaks = [], {"fp32": [], "bf16": []}
    fast_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported() or (
        device.type == "cpu" and engine.cpu_has_fast_bf16())

    def measure_peaks():
        peaks["fp32"].append(matmul_gflops(device))
        peaks["bf16"].append(matmul_gflops(device, torch.bfloat16,
                                           seconds=1.0 if fast_bf16 else 0.2))

    def record(name, seconds, accuracies, batch, precision="fp32"):
        rows.append({"pipeline": name, "batch": batch, "precision": precision,
                     "s_per_epoch": statistics.mean(seconds), "test_acc": accuracies})
        print(f"{name}: {statistics.mean(seconds):.3f} s/epoch, test acc "
              f"{statistics.mean(accuracies):.4f}", flush=True)

    measure_peaks()
    if "tutorial" not in args.skip:
        seconds, acc = tutorial_pipeline(args.epochs, device, 0)
        record("(a) torchvision ToTensor + DataLoader", seconds, [acc], 32)
    if "d2l" not in args.skip:
        seconds, acc = d2l_pipeline(args.epochs, device, 0)
        record("(b) d2l.Trainer", seconds, [acc], 256)
    seconds, acc = cli_pipeline(args.epochs, device)
    record(f"(c) python -m dropout_lab.train --epochs {args.epochs}", seconds, [acc], 256,
           engine.resolve_precision("auto", device))
    measure_peaks()
    seconds, accs = plain_stacked.train(16, data, epochs=args.sweep_epochs)
    record("(d) plain fp32 stacked trainer, 16 models (per model)", seconds, accs, 256)
    seconds, accs, precision = sweep_seconds(16, args.sweep_epochs, device, data)
    record("(e) dl.sweep, 16 models (per model)", seconds, accs, 256, precision)
    precisions = ["fp32", "bf16"] if fast_bf16 else ["fp32"]
    for precision in precisions:
        for k in args.sweep_models:
            s, accs, used = sweep_seconds(k, args.sweep_epochs, device, data, precision)
            record(f"dl.sweep, {k} models, {used} (per model)", s, accs, 256, used)
    rounds = alternating_rounds(args.rounds, 16, device, data) if args.rounds else []
    measure_peaks()
    write_report(rows, peaks, fast_bf16, rounds, device, args)


def write_report(rows, peaks, fast_bf16, rounds, device, args, measured=None):
    measured = measured or time.strftime('%Y-%m-%d %H:%M')
    fp32, bf16 = statistics.mean(peaks["fp32"]), statistics.mean(peaks["bf16"])
    by_name = {row["pipeline"][:3]: row for row in rows}
    base = by_name.get("(a)")
    lines = [
        "# Benchmark: seconds per training epoch",
        "",
        f"Measured {measured} on {platform.processor() or platform.machine()}"
        f" ({torch.get_num_threads()} threads), device **{device}**, torch {torch.__version__}.",
        f"Matmul throughput measured in the same run (1024x1024, at start, middle, end): float32 "
        f"{', '.join(f'{g:.0f}' for g in peaks['fp32'])} GFLOP/s; bfloat16 "
        f"{', '.join(f'{g:.1f}' for g in peaks['bf16'])} GFLOP/s"
        + ("." if fast_bf16 else " (emulated: this machine has no fast bfloat16, so the "
           "engine's default precision here is float32 and no bfloat16 rows are run)."),
        f"One epoch is {GFLOP_PER_EPOCH:.1f} GFLOP (forward + backward, no input gradient); "
        "'% of peak' divides it by the seconds and by the mean throughput above.",
        f"Epochs: {args.epochs} for (a)-(c), {args.sweep_epochs} for the stacked rows. "
        "Command: `python bench/bench_pipelines.py`.",
        "",
        "| pipeline | batch | precision | s/epoch | vs (a) | % of fp32 peak | % of bf16 peak "
        "| test acc (after its epochs) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        accs = row["test_acc"]
        acc = (f"{statistics.mean(accs):.4f} ± {statistics.stdev(accs):.4f} ({len(accs)} models)"
               if len(accs) > 1 else f"{accs[0]:.4f}")
        speed = GFLOP_PER_EPOCH / row["s_per_epoch"]
        versus = f"{base['s_per_epoch'] / row['s_per_epoch']:.1f}x" if base else "-"
        of_bf16 = f"{100 * speed / bf16:.0f} %" if fast_bf16 else "- (emulated)"
        lines.append(f"| {row['pipeline']} | {row['batch']} | {row['precision']} | "
                     f"{row['s_per_epoch']:.3f} | {versus} | {100 * speed / fp32:.0f} % | "
                     f"{of_bf16} | {acc} |")
    plain, ours, cli = by_name["(d)"], by_name["(e)"], by_name["(c)"]
    gap = statistics.mean(ours["test_acc"]) - statistics.mean(plain["test_acc"])
    ratio = plain["s_per_epoch"] / ours["s_per_epoch"]
    verdict = "met" if ratio >= 2.2 else "not met" + (
        "" if fast_bf16 else "; this CPU has no fast bfloat16, so (e) ran in fp32 too")
    lines += ["", "Ratios measured in this run:",
              f"- (e) dl.sweep at its default precision ({ours['precision']}) vs (d) the plain "
              f"fp32 stacked trainer, 16 models, per model: "
              f"{ratio:.2f}x faster (target >= 2.2x: {verdict}); "
              f"mean test accuracy after {args.sweep_epochs} "
              f"epochs {gap:+.4f} (target within 0.01)"]
    lines.append("  (d) is timed without a test evaluation (it tests once, after its last "
                 "epoch); (e) includes dl.sweep's evaluation on the 10,000 test images after "
                 "every epoch, so the ratio is, if anything, in (d)'s favour")
    if rounds:
        lines.append(f"- the same in {len(rounds)} alternating rounds: "
                     f"{', '.join(f'{r:.2f}x' for r in rounds)}; median "
                     f"{statistics.median(rounds):.2f}x")
    if base:
        lines.append(f"- (c) the command line vs (a) the tutorial pipeline, per epoch: "
                     f"{base['s_per_epoch'] / cli['s_per_epoch']:.1f}x faster (target >= 6x); "
                     f"its test accuracy after {args.epochs} epochs {cli['test_acc'][0]:.4f} "
                     "(target >= 0.80)")
    if "(b)" in by_name:
        lines.append(f"- (c) vs (b) d2l.Trainer: "
                     f"{by_name['(b)']['s_per_epoch'] / cli['s_per_epoch']:.1f}x faster")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {"rows": rows, "matmul_gflops": peaks, "fast_bf16": fast_bf16,
         "alternating_ratios_16": rounds, "device": str(device), "measured": measured},
        indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
