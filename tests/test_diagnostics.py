"""Gradient-masking diagnostics: masked toys are flagged and a smooth model is not; Square and BPDA checked."""
import logging
import pytest, torch
from qstudy.attacks import attack
from qstudy.diagnostics import diagnose, zoo_estimates, Scaled, gradient_checks
from qstudy.training import train_model, predict
from qstudy.metrics import attack_points, rate_gap
from qstudy.data import load
from qstudy.config import Run

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)
FAST = dict(eps_grid=(0.01, 0.03, 0.1), spsa_kw=dict(steps=10, samples=16))

@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    "Smoke float and w1a1 models and 24 test points each classifies correctly."
    d = tmp_path_factory.mktemp('runs')
    x, y = load('digits', 'test')
    out = {}
    for m in ('float', 'w1a1'):
        model, _ = train_model(Run('smoke', 'digits', run_dir=d), m, progress=False)
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
    assert list(d.checks.columns) == ['check', 'value', 'flagged', 'reason', 'kind']

def test_a_gradient_sign_alone_does_not_call_a_model_masked(smoke):
    "The STE/finite-difference cosine is a measurement; 'masked' needs an attack that should succeed and does not."
    model, x, y = smoke['w1a1']
    d = diagnose(model, x, y, **FAST)
    cos = d.checks[d.checks.check.str.startswith('cosine(STE')].iloc[0]
    assert not cos.flagged and cos.kind == 'gradient'
    outcome = d.checks[d.checks.kind.isin(['setup', 'outcome'])]
    assert d.masked == bool(outcome.flagged.any())

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

def test_bpda_gradient_on_a_weight_only_model_is_the_models_own(tmp_path_factory):
    "Weights are constants of the input: BPDA's shadow of a weight-only model computes the model and its exact gradient."
    from qstudy.attacks import input_grad
    from qstudy.quantizers import shadow
    model, _ = train_model(Run('smoke', 'digits', run_dir=tmp_path_factory.mktemp('w')), 'w2a32', progress=False, epochs=1)
    x, y = load('digits', 'test')
    x, y = x[:32], y[:32]
    ce = lambda z: torch.nn.functional.cross_entropy(z, y, reduction='none')
    g_model, _ = input_grad(model.eval(), x, ce)
    sh = shadow(model, x)
    g_shadow, _ = input_grad(sh.model.eval(), x, ce)
    assert torch.equal(g_model, g_shadow) and g_model.abs().sum() > 0
    assert 'only its weights are quantized' in sh.backward   # and the attack says it followed the model's own gradient

def test_bpda_keeps_the_first_iterate_that_fools_the_real_model(smoke):
    """BPDA's bookkeeping: a point fooled within k steps keeps that iterate, so allowing more steps leaves it
    unchanged (a last-iterate rule would move it); every kept point fools the real model."""
    model, x, y = smoke['w1a1']
    kw = dict(eps=0.1, step_size=0.01)
    short, longer = attack('bpda', model, x, y, steps=10, **kw), attack('bpda', model, x, y, steps=30, **kw)
    fooled = predict(model, short) != y
    assert fooled.any(), 'nothing fooled in 10 steps: the test checks nothing'
    assert torch.equal(short[fooled], longer[fooled])
    assert (predict(model, longer) != y).sum() >= fooled.sum()

@pytest.fixture(scope='module')
def float_points(smoke, tmp_path_factory):
    "The smoke float model and 150 test points it classifies correctly."
    model = smoke['float'][0]
    x, y = load('digits', 'test')
    idx = attack_points(predict(model, x) == y, 150, seed=1)
    return model, x[idx], y[idx]

@pytest.mark.slow
def test_square_matches_torchattacks(float_points):
    "Success rates of ours and torchattacks' Square, 150 points x 3 seeds each, agree within chance."
    ta = pytest.importorskip('torchattacks')
    model, x, y = float_points
    eps, q = 0.1, 300
    ours, theirs = [], []
    for seed in (0, 1, 2):
        ours.append((predict(model, attack('square', model, x, y, eps=eps, queries=q, seed=seed)) != y).float().mean().item())
        theirs.append((predict(model, ta.Square(model, norm='Linf', eps=eps, n_queries=q, p_init=0.8, seed=seed)(x, y)) != y).float().mean().item())
    o, t, n = sum(ours) / 3, sum(theirs) / 3, 3 * len(y)
    print(f'Square success: ours {o:.3f}, torchattacks {t:.3f} (n = {n} each)')
    # random search: within 4.5 sd of a difference of two rates at p = 1/2 (0.15 at n = 450); the smoke models
    # differ from machine to machine, so the bound is the binomial noise, not one machine's gap
    assert abs(o - t) <= rate_gap(n, z=4.5) and o > 0.2


def test_cosine_of_a_smooth_confident_model_is_one(smoke):
    "A smooth model's gradient agrees with finite differences even where its softmax saturates (cross-entropy there is float32 noise)."
    _, x, _ = smoke['float']
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 32 * 32, 10))
    with torch.no_grad(): y = net(x).argmax(1)   # its own labels: every point classified right
    for beta in (1, 1000):   # × 1000: every point so confident that logsumexp(z) − z_y cancels to rounding noise
        c = gradient_checks(Scaled(net, beta), x, y, gen=torch.Generator().manual_seed(0))[2]
        # 0.98: central differences at h = 1e-3 cross a ReLU kink on few points; on cross-entropy at × 1000 the cosine was noise
        assert c['check'].startswith('cosine(STE') and c['value'] > 0.98, (beta, c['value'])
