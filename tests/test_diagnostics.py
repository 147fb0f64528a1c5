"""Gradient-masking diagnostics: masked toys are flagged and a smooth model is not; Square and BPDA checked."""
import logging
import pytest, torch
from qstudy.attacks import attack
from qstudy.diagnostics import diagnose, zoo_estimates, Scaled
from qstudy.training import train_model, predict
from qstudy.metrics import attack_points
from qstudy.data import load

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)
FAST = dict(eps_grid=(0.01, 0.03, 0.1), spsa_kw=dict(steps=10, samples=16))

@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    "Smoke float and w1a1 models and 24 test points each classifies correctly."
    d = tmp_path_factory.mktemp('runs')
    x, y = load('digits', 'test')
    out = {}
    for m in ('float', 'w1a1'):
        model, _ = train_model(m, 'digits', 'smoke', run_dir=d, progress=False)
        idx = attack_points(predict(model, x) == y, 24, seed=0)
        out[m] = (model.eval(), x[idx], y[idx])
    return out

class Step(torch.nn.Module):
    "Rounds its input to 0/1: every input gradient is exactly zero."
    def __init__(self, m): super().__init__(); self.m = m
    def forward(self, x): return self.m(torch.round(x))

def test_smooth_model_not_flagged(smoke):
    model, x, y = smoke['float']
    d = diagnose(model, x, y, **FAST)
    assert not d.masked, d.checks[d.checks.flagged].to_string()
    assert list(d.checks.columns) == ['check', 'value', 'flagged', 'reason']

def test_saturated_logits_flagged(smoke):
    model, x, y = smoke['float']
    d = diagnose(Scaled(model, 1e4), x, y, **FAST)
    assert d.masked and any('zero gradient' in r or 'rescaling the logits' in r for r in d.reasons), d.reasons

def test_hard_step_flagged(smoke):
    model, x, y = smoke['float']
    m = Step(model)
    ok = predict(m, x) == y
    d = diagnose(m, x[ok], y[ok], **FAST)
    assert d.masked and any('zero gradient' in r for r in d.reasons), d.reasons

def test_zoo_estimates_flat_region(smoke):
    model, x, y = smoke['float']
    class Levels(torch.nn.Module):
        "Input rounded to 16 levels: flat to ZOO's h = 1e-4 almost everywhere."
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, x): return self.m(torch.round(x * 15) / 15)
    kw = dict(steps=5, binary_search_steps=1, coords=32)
    flat, smooth = zoo_estimates(Levels(model), x[:6], y[:6], **kw), zoo_estimates(model, x[:6], y[:6], **kw)
    assert flat['n'] > 0 and smooth['n'] > 0
    assert flat['zero'] > 0.9 and smooth['zero'] < 0.1

@pytest.mark.parametrize('name', ['square', 'bpda'])
def test_new_attacks_on_quantized_model(smoke, name):
    "ε = 0 gives x, L∞ and [0, 1] bounds, and determinism under a seed, on the fully binarized model."
    model, x, y = smoke['w1a1']
    kw = dict(queries=100) if name == 'square' else dict(steps=20, step_size=0.003)
    xa = attack(name, model, x, y, seed=3, **kw)
    assert (xa - x).abs().max() <= 0.03 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
    assert torch.equal(xa, attack(name, model, x, y, seed=3, **kw))
    assert torch.equal(attack(name, model, x, y, eps=0., **kw), x)

def test_bpda_at_least_as_strong_as_its_last_iterate(smoke):
    "BPDA keeps the first iterate that fools the real model, so it never reports less success than plain BIM on the shadow."
    from qstudy.attacks import bim
    from qstudy.quantizers import full_precision_shadow
    model, x, y = smoke['w1a1']
    xa = attack('bpda', model, x, y, eps=0.1, steps=30, step_size=0.01)
    xl = bim(full_precision_shadow(model), x, y, 0.1, 30, 0.01)
    s = lambda z: (predict(model, z) != y).float().mean().item()
    assert s(xa) >= s(xl)

def test_square_matches_torchattacks(smoke):
    "Success rates of ours and torchattacks' Square agree within 15 points (24 points, random search: ±2 σ)."
    ta = pytest.importorskip('torchattacks')
    model, x, y = smoke['float']
    eps, q = 0.1, 300
    ours = (predict(model, attack('square', model, x, y, eps=eps, queries=q, seed=0)) != y).float().mean().item()
    theirs = (predict(model, ta.Square(model, norm='Linf', eps=eps, n_queries=q, p_init=0.8, seed=0)(x, y)) != y).float().mean().item()
    print(f'Square success: ours {ours:.2f}, torchattacks {theirs:.2f}')
    assert abs(ours - theirs) <= 0.15 and ours > 0.2
