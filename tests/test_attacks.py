"""Attacks: properties every attack must have, and agreement with independent implementations (test-only)."""
import logging, math
import numpy as np
import pytest, torch
from qstudy.attacks import attack, ATTACKS, attack_params
from qstudy.training import train_model, predict
from qstudy.metrics import attack_points, rate_gap
from qstudy.data import load
from qstudy.config import Run

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)
# small settings that keep each attack to seconds on the smoke model; the mechanics are those of the paper's
FAST = dict(fgsm={}, bim=dict(steps=20, step_size=0.003), cwl2=dict(steps=30, binary_search_steps=3),
            spsa=dict(steps=10, samples=32), zoo=dict(steps=10, binary_search_steps=2, coords=32),
            square=dict(queries=100), bpda=dict(steps=20, step_size=0.003),
            **{a: dict(steps=10, step_size=0.006) for a in ('pgd_margin', 'pgd_njs', 'pgd_hns')}, apgd_dlr=dict(steps=10),
            **{a: dict(version='apgd', iters=5) for a in ('autoattack', 'autoattack8')})

@pytest.fixture(scope='module')
def points(tmp_path_factory):
    "The smoke float model and 40 test points it classifies correctly."
    model, _ = train_model(Run('smoke', 'digits', run_dir=tmp_path_factory.mktemp('runs')), 'float', progress=False)
    x, y = load('digits', 'test')
    idx = attack_points(predict(model, x) == y, 40, seed=0)
    return model.eval(), x[idx], y[idx]

def success(model, xa, y): return (predict(model, xa) != y).float().mean().item()
def mean_l2(model, x, xa, y):
    ok = predict(model, xa) != y
    return (xa - x)[ok].flatten(1).norm(dim=1).mean().item()

@pytest.mark.parametrize('name', list(ATTACKS))
def test_properties(points, name):
    model, x, y = points
    x, y = x[:8], y[:8]
    xa = attack(name, model, x, y, seed=1, **FAST[name])
    assert xa.shape == x.shape and xa.min() >= 0 and xa.max() <= 1
    if ATTACKS[name]['kind'] == 'bounded':
        assert (xa - x).abs().max() <= attack_params(name)['eps'] + 1e-6
        assert torch.equal(attack(name, model, x, y, eps=0., **FAST[name]), x)  # ε = 0 returns x
    else:  # minimal: every point returned moved is adversarial; the others are returned untouched
        moved = (xa - x).flatten(1).abs().amax(1) > 0
        assert (predict(model, xa[moved]) != y[moved]).all() and torch.equal(xa[~moved], x[~moved])
    assert torch.equal(xa, attack(name, model, x, y, seed=1, **FAST[name]))  # same seed, same x_adv

class Recorder(torch.nn.Module):
    "The model, recording every batch it is asked about and the logits it gave."
    def __init__(self, m): super().__init__(); self.m, self.seen = m, []
    def forward(self, x):
        z = self.m(x); self.seen.append((x.detach().clone(), z.detach().clone())); return z

def test_cwl2_keeps_the_smallest_adversarial_iterate_it_evaluated(points):
    "CW-L2's bookkeeping: per point, the smallest-L2 iterate the model called adversarial; x itself when none was."
    model, x, y = points
    rec = Recorder(model)
    xa = attack('cwl2', rec, x, y, steps=20, binary_search_steps=3, initial_const=0.05, confidence=2.)
    best = torch.full((len(x),), float('inf')); want = x.clone()
    for xi, z in rec.seen:
        if len(xi) != len(x): continue
        other = z.masked_fill(torch.nn.functional.one_hot(y, 10).bool(), -float('inf')).amax(1)
        adv = z.gather(1, y[:, None])[:, 0] - other < -2.        # adversarial with margin κ = 2
        l2 = (xi - x).flatten(1).pow(2).sum(1)
        better = adv & (l2 < best)
        best[better], want[better] = l2[better], xi[better]
    found = torch.isfinite(best)
    print(f'CW-L2 found {int(found.sum())} of {len(x)}')
    assert found.any()
    assert torch.equal(xa, want)

def test_model_untouched(points):
    model, x, y = points
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    attack('bim', model, x[:4], y[:4], **FAST['bim'])
    assert model.training  # mode restored
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())

def test_cw_unbounded_reaches_everything_and_bim_beats_fgsm(points):
    model, x, y = points
    xa = attack('cwl2', model, x, y, initial_const=100., binary_search_steps=1, steps=100)
    assert success(model, xa, y) == 1.0
    for eps in (0.05, 0.1):
        assert success(model, attack('bim', model, x, y, eps=eps, steps=20, step_size=eps / 10), y) >= \
               success(model, attack('fgsm', model, x, y, eps=eps), y)

def test_bad_parameters():
    with pytest.raises(ValueError, match="unknown attack 'deepfool'"): attack_params('deepfool')
    with pytest.raises(ValueError, match='must be ≥ 0'): attack_params('fgsm', eps=-0.01)
    with pytest.raises(ValueError, match='must be an integer ≥ 1'): attack_params('bim', steps=0)
    with pytest.raises(ValueError, match="unknown preset 'cleverhans'"): attack_params('bim', 'cleverhans')

# ---- differential tests against independent implementations ----------------------------------------------

def test_fgsm_identical_to_foolbox(points):
    fb = pytest.importorskip('foolbox')
    model, x, y = points
    _, theirs, _ = fb.attacks.LinfFastGradientAttack(random_start=False)(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=0.03)
    assert torch.equal(attack('fgsm', model, x, y, eps=0.03), theirs)

def test_bim_matches_foolbox(points):
    fb = pytest.importorskip('foolbox')
    model, x, y = points
    a = fb.attacks.LinfBasicIterativeAttack(abs_stepsize=0.003, steps=20, random_start=False)
    _, theirs, _ = a(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=0.03)
    ours = attack('bim', model, x, y, eps=0.03, steps=20, step_size=0.003)
    # same algorithm; float32 sums may differ in the last bit and flip the sign of a ~0 gradient entry,
    # which moves that pixel by one step: at most a few pixels of a few images
    assert (ours - theirs).abs().max() <= 2 * 0.003 + 1e-6
    assert ((ours - theirs).abs() > 1e-6).float().mean() < 1e-3

def test_cwl2_matches_foolbox(points):
    fb = pytest.importorskip('foolbox')
    model, x, y = points
    kw = dict(binary_search_steps=5, steps=50, initial_const=0.9, confidence=0.)
    a = fb.attacks.L2CarliniWagnerAttack(stepsize=0.1, abort_early=True, **kw)
    theirs, _, _ = a(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=None)
    ours = attack('cwl2', model, x, y, lr=0.1, **kw)
    s_ours, s_theirs = success(model, ours, y), success(model, theirs, y)
    # same algorithm, but different tanh clamping and best-point checks: success within 5 points
    assert abs(s_ours - s_theirs) <= 0.05, (s_ours, s_theirs)
    l_ours, l_theirs = mean_l2(model, x, ours, y), mean_l2(model, x, theirs, y)
    assert abs(l_ours - l_theirs) <= 0.15 * l_theirs, (l_ours, l_theirs)  # the 15 %

@pytest.fixture(scope='module')
def many_points(points, tmp_path_factory):
    "The same smoke float model and 150 test points it classifies correctly (for tests sized against chance)."
    model = points[0]
    x, y = load('digits', 'test')
    idx = attack_points(predict(model, x) == y, 150, seed=1)
    return model, x[idx], y[idx]

@pytest.mark.slow
def test_spsa_matches_torchattacks(many_points):
    ta = pytest.importorskip('torchattacks')
    model, x, y = many_points
    ours, theirs = [], []
    for seed in (0, 1):  # two seeds × 150 points: n = 300 per implementation
        torch.manual_seed(seed)  # torchattacks draws from torch's global generator
        theirs.append(success(model, ta.SPSA(model, eps=0.1, delta=0.01, lr=0.01, nb_iter=10, nb_sample=32, max_batch_size=64)(x, y), y))
        ours.append(success(model, attack('spsa', model, x, y, eps=0.1, steps=10, samples=32, seed=seed), y))
    o, t = np.mean(ours), np.mean(theirs)
    print(f'SPSA success: ours {o:.3f}, torchattacks {t:.3f} (n = 300 each)')
    # stochastic estimators (and torchattacks has no random start): within 4.5 sd of a difference of two rates
    assert abs(o - t) <= rate_gap(2 * len(y), z=4.5), (o, t)
    # and it does something: at ε = 0.1 ten steps of Adam break 0.19 of the smoke float model's points on this
    # machine (at ε = 0.05 only 0.07, too near any floor)
    assert o > 0.05

def test_apgd_dlr_matches_autoattack(many_points):
    "qstudy's APGD-DLR (on a float model its BPDA shadow is the model) against the official APGD-DLR, on the same points."
    from pyautoattack.autopgd_base import APGDAttack
    model, x, y = many_points
    ours, theirs = [], []
    for seed in (0, 1):  # two seeds × 150 points: n = 300 per implementation
        official = APGDAttack(model, n_restarts=1, n_iter=20, eps=0.02, norm='Linf', loss='dlr', rho=.75, seed=seed, device='cpu')
        theirs.append(success(model, official.perturb(x, y), y))
        ours.append(success(model, attack('apgd_dlr', model, x, y, eps=0.02, steps=20, seed=seed), y))
    o, t = np.mean(ours), np.mean(theirs)
    print(f'APGD-DLR success: ours {o:.3f}, official {t:.3f} (n = 300 each)')
    # random starts differ: within 4.5 sd of a difference of two rates on 300 points each. ε = 0.02 puts the success
    # mid-range on the smoke model (0.49 on this machine), where a difference shows
    assert abs(o - t) <= rate_gap(2 * len(y), z=4.5), (o, t)
    assert o > 0.05   # and it does something

@pytest.mark.slow
def test_apgd_dlr_on_a_binarized_model_matches_the_official(tmp_path_factory):
    """On a binarized model the official APGD-DLR follows the straight-through gradient. qstudy's, on the model's
    own gradient (backward='own'), must match it; and the strongest evaluation's union of both backward passes
    must be at least as strong (the shadow alone was weaker than the official there: 0.39 against 0.11)."""
    from pyautoattack.autopgd_base import APGDAttack
    model, _ = train_model(Run('smoke', 'digits', run_dir=tmp_path_factory.mktemp('w1a1')), 'w1a1', progress=False)
    model.eval()
    x, y = load('digits', 'test')
    idx = attack_points(predict(model, x) == y, 150, seed=1)
    x, y = x[idx], y[idx]
    own, theirs, union = [], [], []
    for seed in (0, 1):  # two seeds × 150 points: n = 300 per implementation
        official = APGDAttack(model, n_restarts=1, n_iter=20, eps=0.02, norm='Linf', loss='dlr', rho=.75, seed=seed, device='cpu')
        theirs.append(success(model, official.perturb(x, y), y))
        xo = attack('apgd_dlr', model, x, y, eps=0.02, steps=20, seed=seed, backward='own')
        xs = attack('apgd_dlr', model, x, y, eps=0.02, steps=20, seed=seed, backward='shadow')
        own.append(success(model, xo, y))
        union.append(((predict(model, xo) != y) | (predict(model, xs) != y)).float().mean().item())
    o, t, u = np.mean(own), np.mean(theirs), np.mean(union)
    print(f'APGD-DLR success on w1a1: ours (own gradient) {o:.3f}, official {t:.3f}, union with the shadow {u:.3f} (n = 300 each)')
    # random starts differ: within 4.5 sd of a difference of two rates on 300 points each
    assert abs(o - t) <= rate_gap(2 * len(y), z=4.5), (o, t)
    assert u >= t - rate_gap(2 * len(y), z=4.5), (u, t)   # the union is never the weaker, beyond chance
    assert o > 0.05   # and it does something

def test_spsa_gradient_estimate_points_along_the_gradient():
    "SPSA's estimate of a smooth loss's gradient lines up with the exact one as samples grow (the estimator itself)."
    from qstudy.attacks import spsa_grad, margin, input_grad
    model, x, y = tiny_linear_problem()
    exact, _ = input_grad(model, x, lambda z: margin(z, y))
    cos = lambda s: torch.nn.functional.cosine_similarity(
        spsa_grad(model, x, y, margin, samples=s, delta=0.01, gen=torch.Generator().manual_seed(0)).flatten(1), exact.flatten(1)).mean().item()
    c16, c1024 = cos(16), cos(1024)
    print(f'cosine with the exact gradient: {c16:.3f} at 16 samples, {c1024:.3f} at 1024')
    # 48 coordinates: with s Rademacher samples the cosine is about sqrt(s / (s + 47)); 0.98 at 1024, 0.5 at 16
    assert c1024 > 0.95 and c1024 > c16

def tiny_linear_problem():
    "A linear model on 3×4×4 inputs (48 coordinates) and 10 points it classifies correctly by construction."
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10)).eval()
    x = torch.rand(10, 3, 4, 4)
    return model, x, model(x).argmax(1)

ZOO_KW = dict(steps=100, binary_search_steps=5, initial_const=0.9, lr=0.1)

def test_zoo_matches_cw_where_finite_differences_are_exact():
    """ZOO minimises CW's objective (on log-softmax) with coordinate-wise finite differences; on a 48-coordinate
    linear model every coordinate is estimated many times, so it must land where foolbox's exact-gradient
    CW-L2 lands."""
    fb = pytest.importorskip('foolbox')
    model, x, y = tiny_linear_problem()
    ours = attack('zoo', model, x, y, coords=16, seed=0, **ZOO_KW)
    kw = dict(ZOO_KW); kw['stepsize'] = kw.pop('lr')
    cw, _, _ = fb.attacks.L2CarliniWagnerAttack(confidence=0., abort_early=True, **kw)(
        fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=None)
    s_ours, s_cw = success(model, ours, y), success(model, cw, y)
    l_ours, l_cw = mean_l2(model, x, ours, y), mean_l2(model, x, cw, y)
    print(f'ZOO success {s_ours:.2f} L2 {l_ours:.3f}; foolbox CW-L2 success {s_cw:.2f} L2 {l_cw:.3f}')
    assert abs(s_ours - s_cw) <= 0.10
    # the log-softmax margin differs from the logit margin by the log-partition terms, so the optimum moves a
    # little: the 25 % for ZOO
    assert abs(l_ours - l_cw) <= 0.25 * l_cw

@pytest.mark.xfail(strict=True, reason="ART's ZooAttack reaches 30 % here where exact CW and ours reach 100 %; its "
                   "_optimizer returns x_adv + noise with x_adv already perturbed (noise counted twice). Known to "
                   "its users (ART issues #1078, #1330). Strict: if ART is fixed this test passes and must be un-marked.")
def test_zoo_matches_art():
    pytest.importorskip('art')
    from art.attacks.evasion import ZooAttack
    from art.estimators.classification import PyTorchClassifier
    model, x, y = tiny_linear_problem()
    np.random.seed(0)  # ART draws its coordinates from numpy's global generator
    clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(3, 4, 4), nb_classes=10,
                            clip_values=(0., 1.))
    z = ZooAttack(clf, confidence=0., targeted=False, abort_early=True, use_resize=False, use_importance=False,
                  nb_parallel=16, batch_size=1, variable_h=1e-4, verbose=False, max_iter=100, binary_search_steps=5,
                  initial_const=0.9, learning_rate=0.1)
    theirs = torch.from_numpy(z.generate(x.numpy(), y.numpy()))
    ours = attack('zoo', model, x, y, coords=16, seed=0, **ZOO_KW)
    s_ours, s_theirs = success(model, ours, y), success(model, theirs, y)
    print(f'ZOO success ours {s_ours:.2f} ART {s_theirs:.2f}')
    assert abs(s_ours - s_theirs) <= 0.10, (s_ours, s_theirs)  # the 10 points
    l_ours, l_theirs = mean_l2(model, x, ours, y), mean_l2(model, x, theirs, y)
    assert abs(l_ours - l_theirs) <= 0.25 * l_theirs  # the 25 %
