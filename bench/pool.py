"""Is `MaxPool2x2` (qstudy.models) faster than PyTorch's max pooling where no gradient is taken, with the same logits?

    .venv/bin/python bench/pool.py [--width 0.125] [--batch 256] [--repeat 10]

Prints, per model (untrained, eval mode, each in the layout it trains in), the forward rate with qstudy's pooling
against the same network with `nn.MaxPool2d(2)`, as a ratio measured in the same process, and whether the logits are
equal bit for bit. Measured here (1 thread beside a training run, so noisy; width 1/8): untrained float x1.11, w1a1 x1.15,
w2a2 x1.10, w2a32 x1.02 (channels_last, where the library's pooling is already fast); the trained SVHN w1a1 x1.25-1.34,
float x1.04-1.11 (an equivalent script on the run store's models)."""
import argparse, time
import torch
from torch import nn
from qstudy.models import build_model, MaxPool2x2
from qstudy.training import train_layout

def rate(model, x, repeat):
    "Images a second of model's forward on x, best of `repeat` timed passes after one warm-up."
    model(x); best = 0.
    for _ in range(repeat):
        t = time.perf_counter(); model(x); best = max(best, len(x) / (time.perf_counter() - t))
    return best

if __name__ == '__main__':
    p = argparse.ArgumentParser(); p.add_argument('--width', type=float, default=0.125)
    p.add_argument('--batch', type=int, default=256); p.add_argument('--repeat', type=int, default=10)
    a = p.parse_args()
    torch.manual_seed(0)
    for name in ('float', 'w1a1', 'w2a2', 'w2a32'):
        fmt = train_layout(name)
        ours = build_model(name, 'cifar10', a.width, 'authors').eval().to(memory_format=fmt)
        ref = nn.Sequential(*[nn.MaxPool2d(2) if isinstance(l, MaxPool2x2) else l for l in ours]).eval()
        x = torch.rand(a.batch, 3, 32, 32).contiguous(memory_format=fmt)
        with torch.no_grad():
            same = torch.equal(ours(x), ref(x))
            r_ours, r_ref = rate(ours, x, a.repeat), rate(ref, x, a.repeat)
        print(f"{name:6s} {r_ours:7.0f} img/s against {r_ref:7.0f}: x{r_ours / r_ref:.2f}, logits equal: {'yes' if same else 'NO'}")
