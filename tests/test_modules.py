"""Fast checks of the modules the smoke study exercises end to end (gradients, regime, strongest), for the fast tier."""
import pytest, torch
from torch import nn
from qstudy.gradients import cosine_matrix
from qstudy.regime import regime_variants, regime_attacks, logit_stats
from qstudy.strongest import STRONGEST, STRONGEST_RUNS, AT_PAPER_EPS, duel, strongest_run
from qstudy.config import Run

def test_cosine_matrix_leaves_zero_gradients_out():
    g = torch.tensor([[1., 0.], [0., 1.], [0., 0.]])
    mean, _, n = cosine_matrix(dict(a=g, b=g.flip(1), c=g))
    assert mean[0, 2] == pytest.approx(1.0) and mean[0, 1] == pytest.approx(0.0)   # identical; orthogonal
    assert n[0, 1] == 2   # the all-zero row is not a direction: left out

def test_regime_variants_are_recipe_by_width_for_each_model():
    v = regime_variants('smoke')
    grid = [(x['recipe'], x['width'], x['model']) for x in v]
    assert sorted(grid) == sorted([(r, w, m) for r in ('qstudy', 'authors') for w in (0.0625, 0.125) for m in ('float', 'w1a1')]
                                  + [('authors-tf_sign', 0.0625, m) for m in ('float', 'w1a1')])   # an item out, at the first width only
    assert all(x['overrides']['epochs'] == (1 if x['width'] == 0.125 else 2) for x in v)   # smoke caps width 1/8 at one epoch
    # on cpu, width 1/8 under the study's recipe is the study's own model (trained to its plateau): shared, never retrained
    from qstudy.training import model_config
    own = [x for x in regime_variants('cpu') if x['width'] == 0.125 and x['recipe'] == 'authors-folded']
    assert own and all(model_config(x['model'], 'cifar10', 'cpu', **x['overrides']) == model_config(x['model'], 'cifar10', 'cpu') for x in own)
    a = regime_attacks(Run('smoke'))
    assert a['bim_margin'][1]['keep'] == 'last' and a['bim_margin'][1]['steps'] == a['bim_hns'][1]['steps']   # like-for-like with BIM
    assert {'square', 'bpda'} <= set(a)   # the gradient-free and the smooth view of a rise

def test_logit_stats_counts_zero_gradients_on_correct_points():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad(): model[1].weight.zero_(); model[1].bias.copy_(torch.tensor([5., 0., 0.]))
    s = logit_stats(model, torch.rand(6, 1, 2, 2), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert len(s['margin']) == 3 and bool(s['zero_ce'].all())   # only class-0 points are right; no weight reaches the input

def test_strongest_runs_both_backward_passes_and_duels():
    grad = {a for a, p in STRONGEST_RUNS.values() if 'backward' in p}
    for a in grad: assert {f'{a}@own', f'{a}@shadow'} <= set(STRONGEST)
    assert 'autoattack8' not in AT_PAPER_EPS and strongest_run('apgd_dlr@own', {'apgd_dlr': dict(steps=5)}) == ('apgd_dlr', dict(steps=5, backward='own'))
    own, shadow = torch.tensor([True, True, False, False]), torch.tensor([True, False, True, True])   # fooled per point
    d = duel('w1a1', 'bim', own, shadow)
    assert (d['only_own'], d['only_shadow'], d['won']) == (1, 2, 'shadow') and d['own'] == 0.5 and d['shadow'] == 0.25
