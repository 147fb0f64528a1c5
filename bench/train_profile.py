"""Where `train_model`'s steps spend time that a plain loop's do not: torch.profiler, op by op, per step.

    QSTUDY_DATA=../shared/data .venv/bin/python bench/train_profile.py --model w1a1

Profiles the timed steps of `bench/train.py`'s plain loop (in `train_model`'s layout and precision) and as many
steps of `train_model` from the same batch on (after the same warm-up), and prints the ops whose self time per step differs most, with their call
counts. Measured on w1a1 (bf16, AVX512-BF16): `aten::fill_` 540 calls/step against 38 — determinism's
`fill_uninitialized_memory` — and Lightning's per-step Python counted in `Optimizer.step` (the step runs inside
its closure).
"""
import argparse, sys
from pathlib import Path
import torch
import lightning as L
from torch.profiler import profile, ProfilerActivity
sys.path.insert(0, str(Path(__file__).parent))
from train import WARM, plain_loop, timed_steps, cifar_subset, lightning_epoch
from qstudy.training import train_settings, resolve_precision, train_layout

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
    x, y = cifar_subset(a.images)
    tr = train_settings('cpu', 'cifar10')
    bf16 = resolve_precision(tr['precision'], 'cpu').startswith('bf16')
    cl = train_layout(a.model, tr['channels_last']) == torch.channels_last
    p = profile(activities=[ProfilerActivity.CPU])
    plain_loop(a.model, x, y, 0.125, a.batch, channels_last=cl, bf16=bf16, around=lambda: p)
    steps = len(timed_steps(len(x), a.batch))
    plain = per_step(p, steps)
    cb = Profiled(WARM, WARM + steps - 1)   # the same whole batches of the epoch (its last, partial one left out)
    lightning_epoch(a.model, a.images, 0.125, a.batch, [cb])
    lit = per_step(cb.p, steps)
    print(f"{a.model}, channels_last {cl}, bf16 {bf16}; self time per step, ms: plain {sum(v[0] for v in plain.values()):.1f}, "
          f"train_model {sum(v[0] for v in lit.values()):.1f}")
    zero = (0.0, 0.0)
    for k in sorted(set(plain) | set(lit), key=lambda k: -(lit.get(k, zero)[0] - plain.get(k, zero)[0]))[:a.top]:
        (tp, cp), (tl, clc) = plain.get(k, zero), lit.get(k, zero)
        print(f"{k[:48]:48s} plain {tp:7.2f} ms ({cp:5.0f} calls)   train_model {tl:7.2f} ms ({clc:5.0f} calls)")

if __name__ == '__main__':
    main()
