"""Does channels_last change a model's numbers only by rounding? One forward/backward per model, both layouts.

    .venv/bin/python bench/layout.py [--width 0.125] [--batch 128]

Prints, per model, the largest logit difference and the worst relative gradient difference (over parameters)
between the default layout and channels_last, on the same weights and batch, in train mode. Measured here
(width 1/8): float 3.9e-5 / 0.5 %, w1a32 3.8e-5 / 0.8 %; w1a1 1.88 / 51 %, w2a2 0.43 / 68 % -- the activation
quantizers amplify the layout's rounding through their sign and level choices (the stop-23 note on issue 15).
"""
import argparse, copy
import torch
import torch.nn.functional as F
from qstudy.models import build_model

def grads(model, x, y):
    "Logits and every parameter's gradient of one cross-entropy step."
    model.zero_grad()
    z = model(x); F.cross_entropy(z, y).backward()
    return z.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--width', type=float, default=0.125); ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--models', nargs='+', default=['float', 'w1a1', 'w2a2', 'w1a32'])
    a = ap.parse_args()
    torch.manual_seed(0)
    x, y = torch.rand(a.batch, 3, 32, 32), torch.randint(0, 10, (a.batch,))
    for name in a.models:
        m = build_model(name, 'cifar10', a.width).train()
        mc = copy.deepcopy(m).to(memory_format=torch.channels_last)
        (z0, g0), (z1, g1) = grads(m, x, y), grads(mc, x.contiguous(memory_format=torch.channels_last), y)
        rel = {n: ((g0[n] - g1[n]).norm() / g0[n].norm().clamp_min(1e-12)).item() for n in g0}
        worst = max(rel, key=rel.get)
        print(f"{name:6s} logits max |diff| {(z0 - z1).abs().max().item():.3g}; worst relative gradient diff {rel[worst]:.3f} ({worst})")

if __name__ == '__main__': main()
