"""Where `train_model`'s steps spend time that a plain loop's do not: torch.profiler, op by op, per step.

    QSTUDY_DATA=../shared/data .venv/bin/python bench/train_profile.py --model w1a1

Profiles ~20 steps of `bench/train.py`'s plain loop (in `train_model`'s layout and precision) and ~20 steps of
`train_model` (from its fourth batch), and prints the ops whose self time per step differs most, with their call
counts. Measured on w1a1 (bf16, AVX512-BF16): `aten::fill_` 540 calls/step against 38 — determinism's
`fill_uninitialized_memory` — and Lightning's per-step Python counted in `Optimizer.step` (the step runs inside
its closure).
"""
import argparse, sys, tempfile
from pathlib import Path
import torch
import lightning as L
from torch.profiler import profile, ProfilerActivity
sys.path.insert(0, str(Path(__file__).parent))
from train import plain_loop
from qstudy.data import load
from qstudy.training import train_model, train_settings, resolve_precision, train_layout

class Profiled(L.Callback):
    "Profiles the training batches first..last (inclusive)."
    def __init__(self, first, last): self.first, self.last, self.p = first, last, None
    def on_train_batch_start(self, trainer, lit, batch, i):
        if i == self.first: self.p = profile(activities=[ProfilerActivity.CPU]); self.p.__enter__()
    def on_train_batch_end(self, trainer, lit, out, batch, i):
        if i == self.last: self.p.__exit__(None, None, None)

def per_step(p, steps):
    "{op: (self ms per step, calls per step)} of a finished profile."
    return {e.key: (e.self_cpu_time_total / steps / 1e3, e.count / steps) for e in p.key_averages()}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', default='w1a1')
    ap.add_argument('--images', type=int, default=3000)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--top', type=int, default=15)
    a = ap.parse_args()
    x, y = load('cifar10', 'train')
    sel = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:a.images]
    x, y = x[sel].contiguous(), y[sel]
    tr = train_settings('cpu', 'cifar10')
    bf16 = resolve_precision(tr['precision'], 'cpu').startswith('bf16')
    cl = train_layout(a.model, tr['channels_last']) == torch.channels_last
    with profile(activities=[ProfilerActivity.CPU]) as p:
        plain_loop(a.model, x, y, 0.125, a.batch, channels_last=cl, bf16=bf16)
    plain = per_step(p, a.images // a.batch)   # its three warm-up steps included, as whole batches
    steps = a.images // a.batch - 4            # whole batches after the fourth, the last one left out
    cb = Profiled(3, 3 + steps - 1)
    train_model(a.model, 'cifar10', 'cpu', run_dir=tempfile.mkdtemp(), progress=False, epochs=1,
                train_size=round(a.images / 0.9), width=0.125, batch_size=a.batch, trainer_kwargs=dict(callbacks=[cb]))
    lit = per_step(cb.p, steps)
    print(f"{a.model}, channels_last {cl}, bf16 {bf16}; self time per step, ms: plain {sum(v[0] for v in plain.values()):.1f}, "
          f"train_model {sum(v[0] for v in lit.values()):.1f}")
    zero = (0.0, 0.0)
    for k in sorted(set(plain) | set(lit), key=lambda k: -(lit.get(k, zero)[0] - plain.get(k, zero)[0]))[:a.top]:
        (tp, cp), (tl, clc) = plain.get(k, zero), lit.get(k, zero)
        print(f"{k[:48]:48s} plain {tp:7.2f} ms ({cp:5.0f} calls)   train_model {tl:7.2f} ms ({clc:5.0f} calls)")

if __name__ == '__main__':
    main()
