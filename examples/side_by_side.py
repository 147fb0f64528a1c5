"""qstudy.evaluate on a Brevitas 2-bit CNN and on qstudy's own w1a1, each beside a float reference, on the embedded digits.

    python examples/side_by_side.py [--n 300] [--eps 0.1]

Prints each evaluation's summary and attack table and writes examples/out/<name>.json. Needs Brevitas (the dev extra)."""
import argparse, json, tempfile, warnings
from pathlib import Path
import torch, torch.nn.functional as F
from torch import nn
import qstudy
from qstudy.data import load
from qstudy.training import train_model
from qstudy.config import Run

def fit(m, x, y, steps=400, seed=0):
    "Adam on digits for a few hundred steps (seconds); eval mode."
    torch.manual_seed(seed); m(x[:2]); opt = torch.optim.Adam(m.parameters(), 3e-3)
    g = torch.Generator().manual_seed(seed)
    m.train()
    for _ in range(steps):
        i = torch.randint(0, len(x), (64,), generator=g)
        opt.zero_grad(); F.cross_entropy(m(x[i]), y[i]).backward(); opt.step()
    return m.eval()

def cnn(conv=nn.Conv2d, act=nn.ReLU, lin=nn.Linear, conv_kw={}, act_kw={}, lin_kw={}):
    "A small CNN for 3×32×32 inputs."
    torch.manual_seed(0)
    return nn.Sequential(conv(3, 16, 3, padding=1, **conv_kw), act(**act_kw), nn.MaxPool2d(4), nn.Flatten(), lin(16 * 64, 10, **lin_kw))

def main(n=300, eps=0.1, out=Path(__file__).parent / 'out', runs=None):
    "Train both pairs, evaluate each quantized model beside its float twin, print and write the evaluations; {name: Evaluation}."
    warnings.filterwarnings('ignore')
    import brevitas.nn as qnn
    (x, y), (xt, yt) = load('digits', 'train'), load('digits', 'test')
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    brev = fit(cnn(qnn.QuantConv2d, qnn.QuantReLU, qnn.QuantLinear, conv_kw=dict(weight_bit_width=2), act_kw=dict(bit_width=2),
                   lin_kw=dict(weight_bit_width=2, bias=True)), x, y)
    flt = fit(cnn(), x, y)
    run = Run('smoke', 'digits', run_dir=runs or tempfile.mkdtemp())
    w1a1, _ = train_model(run, 'w1a1', progress=False)
    fl2, _ = train_model(run, 'float', progress=False)
    evs = {}
    for name, model, ref in (('brevitas_w2a2', brev, flt), ('qstudy_w1a1', w1a1, fl2)):
        e = evs[name] = qstudy.evaluate(model, (xt, yt), reference=ref, eps=eps, n=n)
        print(f"\n== {name}\n{e.summary}")
        print(e.table().drop(columns='backward').to_string(index=False))
        print('backward:', json.dumps(e.backward, indent=1)); print('masking:', e.masking['verdict'])
        e.save(out / f'{name}.json')
    return evs

if __name__ == '__main__':
    p = argparse.ArgumentParser(); p.add_argument('--n', type=int, default=300); p.add_argument('--eps', type=float, default=0.1)
    a = p.parse_args()
    main(a.n, a.eps)
