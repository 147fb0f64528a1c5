"""Does channels_last change a model's numbers only by rounding? One forward/backward per model, both layouts.

    .venv/bin/python bench/layout.py [--width 0.125] [--batch 128] [--bn] [--speed]

Prints, per model, the largest logit difference and the worst relative gradient difference (over parameters)
between the default layout and channels_last, on the same weights and batch, in train mode. Measured here
(width 1/8): float 3.9e-5 / 0.5 %, w1a32 3.8e-5 / 0.8 %; w1a1 1.88 / 51 %, w2a2 0.43 / 68 % -- the activation
quantizers amplify the layout's error through their sign and level choices (the stop-23 note on issue 15).
The error is batch norm's: `--bn` prints PyTorch's CPU batch norm (train mode) in both layouts against a float64
reference; measured here, max error 4.9e-7 default / 2.9e-5 channels_last on unit normal inputs, 5.3e-6 / 6.9e-4
at mean 100. So activation-quantized models train in the default layout (`qstudy.training.train_layout`).
`--speed` prints the eval-mode forward rate in both layouts, what an attack's cost follows; measured here (width 1/8,
2 threads, beside a running study, so noisy): float x1.44-1.68, w1a32 x1.57 faster in channels_last (w1a1 x1.33, w2a2 x1.40, not
used: the layout's rounding flips their quantized activations). So every model is used in the layout it trained in
(`qstudy.training.in_layout`).
"""
import argparse, copy, time
import torch
import torch.nn.functional as F
from qstudy.models import build_model

def grads(model, x, y):
    "Logits and every parameter's gradient of one cross-entropy step."
    model.zero_grad()
    z = model(x); F.cross_entropy(z, y).backward()
    return z.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

def bn_error(mu, fmt):
    "Largest error of fp32 batch norm in layout `fmt` on inputs of mean `mu`, against float64."
    torch.manual_seed(0)
    x = torch.randn(128, 16, 32, 32) + mu
    ref = F.batch_norm(x.double(), None, None, training=True)
    return (F.batch_norm(x.contiguous(memory_format=fmt), None, None, training=True).double() - ref).abs().max().item()

def forward_rate(model, batch=256, reps=7):
    "Images a second through `model`'s eval-mode forward (no gradient), the best of `reps` runs after a warm-up."
    x = torch.rand(batch, 3, 32, 32)
    times = []
    with torch.no_grad():
        for _ in range(reps + 1):
            t0 = time.perf_counter(); model(x); times.append(time.perf_counter() - t0)
    return batch / min(times[1:])

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--width', type=float, default=0.125); ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--models', nargs='+', default=['float', 'w1a1', 'w2a2', 'w1a32'])
    ap.add_argument('--bn', action='store_true', help="also batch norm's own error in each layout")
    ap.add_argument('--speed', action='store_true', help="also the eval-mode forward rate (the attacks' cost) in each layout")
    a = ap.parse_args()
    if a.speed:
        for name in a.models:
            plain = build_model(name, 'cifar10', a.width).eval()
            cl = copy.deepcopy(plain).to(memory_format=torch.channels_last)
            rate = {k: forward_rate(m) for k, m in (('default', plain), ('channels_last', cl))}
            print(f"{name:6s} eval forward, batch 256: default {rate['default']:.0f} img/s, channels_last {rate['channels_last']:.0f} img/s "
                  f"(x{rate['channels_last'] / rate['default']:.2f})")
    if a.bn:
        for mu in (0., 100.):
            print(f"batch norm, inputs of mean {mu:g}: max error default {bn_error(mu, torch.contiguous_format):.2g}, "
                  f"channels_last {bn_error(mu, torch.channels_last):.2g} (against float64)")
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
