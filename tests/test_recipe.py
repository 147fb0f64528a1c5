"""The authors' recipe, switch by switch, on tiny models; the compact shipped form of a trained model."""
import logging
import pytest, torch
from torch import nn
from qstudy.config import recipe_switches, InputError
from qstudy.models import build_model
from qstudy.quantizers import QAct, QConv2d, QLinear
from qstudy.training import train_model, ship_model, shipped_model, ShippedMismatch, LitModel, predict
from qstudy import store
from qstudy.config import Run

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)

def acts(model): return [m for m in model.modules() if isinstance(m, QAct)]

def test_binary_latent_kernels_start_spread_over_minus_one_one():
    torch.manual_seed(0)
    a, q = build_model('w1a1', 'cifar10', 0.0625, 'authors'), build_model('w1a1', 'cifar10', 0.0625, 'qstudy')
    for m in (l for l in a.modules() if isinstance(l, (QConv2d, QLinear))):
        w = m.weight
        assert w.abs().max() <= 1 and w.min() < -0.9 and w.max() > 0.9  # U(-1, 1)
    assert all(l.weight.abs().max() < 0.5 for l in q.modules() if isinstance(l, (QConv2d, QLinear)))  # PyTorch's default

def test_an_input_exactly_zero_stays_zero_through_the_binary_activation():
    x = torch.tensor([-2., -0.5, 0., 0.5, 2.])
    assert acts(build_model('w1a1', 'cifar10', 0.0625, 'authors'))[0](x).tolist() == [-1, -1, 0, 1, 1]
    assert acts(build_model('w1a1', 'cifar10', 0.0625, 'qstudy'))[0](x).tolist() == [-1, -1, 1, 1, 1]

def test_the_dorefa_activation_of_minus_0_4_is_the_level_of_0_4():
    for name in ('w2a2', 'w3a3', 'w4a4'):
        act = acts(build_model(name, 'cifar10', 0.0625, 'authors'))[0]
        out = act(torch.tensor([-0.4, 0.4]))
        assert out[0] == out[1] > 0
        assert acts(build_model(name, 'cifar10', 0.0625, 'qstudy'))[0](torch.tensor([-0.4]))[0] == 0  # clip(x, 0, 1)
    # the weight-only DoReFa models: min(1, |x|) in place of ReLU
    assert acts(build_model('w2a32', 'cifar10', 0.0625, 'authors'))[0](torch.tensor([-0.4, -3.])).tolist() == [pytest.approx(0.4), 1]

@pytest.mark.parametrize('name', ['w1a1', 'w2a2'])
def test_the_last_layer_sees_non_binary_values(name):
    seen = {}
    for recipe in ('authors', 'qstudy'):
        torch.manual_seed(0)
        m = build_model(name, 'cifar10', 0.0625, recipe)
        m.train(); m(torch.rand(32, 3, 32, 32)); m.eval()
        h = m[-1].register_forward_hook(lambda mod, i, o: seen.__setitem__(recipe, i[0].unique().numel()))
        with torch.no_grad(): m(torch.rand(16, 3, 32, 32))
        h.remove()
    assert seen['authors'] > 100 and seen['qstudy'] <= (2 if name == 'w1a1' else 4)

def test_the_gradient_through_a_binary_input_vanishes_beyond_one():
    act = acts(build_model('w1a1', 'cifar10', 0.0625, 'authors'))[1]
    x = torch.tensor([-1.5, -1., -0.3, 0., 0.7, 1., 1.01, 3.], requires_grad=True)
    act(x).sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 0, 0]

def test_batch_norm_glorot_and_ablation_switches():
    a = build_model('w2a2', 'cifar10', 0.0625, 'authors')
    bns = [m for m in a.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)  # Keras' 0.99 / 1e-3
    off = build_model('w2a2', 'cifar10', 0.0625, 'authors-keras_bn')
    assert all(b.momentum == 0.1 and b.eps == 1e-5 for b in off.modules() if isinstance(b, nn.BatchNorm2d))
    assert not recipe_switches('authors')['glorot_lr']  # the authors' optimizer is not public: not applied
    lit = LitModel('w2a2', 'cifar10', 0.0625, lr=1e-3, recipe='authors+glorot_lr')
    lrs = sorted(g['lr'] for g in lit.configure_optimizers()[0][0].param_groups)
    conv1 = lit.model[0]  # 3 -> 8 channels, 3x3: 1 / H = sqrt((27 + 72) / 1.5)
    assert len(lrs) > 2 and pytest.approx(1e-3 * ((27 + 72) / 1.5) ** 0.5) in lrs and lrs[0] == 1e-3
    assert len(LitModel('w2a2', 'cifar10', 0.0625, recipe='authors').configure_optimizers()[0][0].param_groups) == 1
    with pytest.raises(InputError, match='unknown recipe switch'): build_model('w1a1', 'cifar10', 0.0625, 'authors-nope')

def test_shipped_model_loads_instead_of_training(tmp_path):
    "A model shipped compactly is loaded bit for bit in a fresh run store, checked against its recorded accuracy."
    tr = dict(epochs=2, recipe='authors'); kw = dict(tr, progress=False)
    for name in ('w1a1', 'w3a32'):
        m, r = train_model(Run('smoke', 'digits', run_dir=tmp_path / 'a'), name, **kw)
        f = ship_model(r, tmp_path / 'a', tmp_path / 'shipped')
        assert f.with_suffix('.qsw').stat().st_size < 40_000  # 1-3 bit kernels packed; the fp32 state is ~210 kB
        m2, r2 = train_model(Run('smoke', 'digits', run_dir=tmp_path / 'b'), name, shipped=tmp_path / 'shipped', **kw)
        assert r2['source'] == 'shipped' and r2['hash'] == r['hash'] and r2['n_correct'] == r['n_correct']
        assert r2['curve'] == r['curve'] and r2['recorded_accuracy'] == r['accuracy']
        x = torch.rand(64, 3, 32, 32)
        with torch.no_grad(): assert torch.equal(m2(x), m(x))
        assert torch.equal(predict(m2, x), predict(shipped_model(name, 'digits', 'smoke', root=tmp_path / 'shipped', **tr)[0], x))
        # without the shipped folder the same config trains
        assert train_model(Run('smoke', 'digits', run_dir=tmp_path / 'c'), name, shipped=False, **kw)[1]['source'] == 'trained'
    with pytest.raises(InputError, match='no shipped float'): shipped_model('float', 'digits', 'smoke', root=tmp_path / 'shipped')
    q = f.with_suffix('.qsw'); q.write_bytes(q.read_bytes()[:-1] + b'\0')  # one byte changed
    with pytest.raises(ShippedMismatch, match='checksum'):
        train_model(Run('smoke', 'digits', run_dir=tmp_path / 'd'), 'w3a32', shipped=tmp_path / 'shipped', **kw)
