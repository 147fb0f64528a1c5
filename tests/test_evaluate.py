"""qstudy.evaluate on models qstudy did not build: Brevitas, torch.ao fake-quant, an int8 ONNX graph, and its own w1a1.

Each model is trained for a few seconds on the embedded digits; the evaluations run the quick budget on 64 test points
at ε = 0.1 (digits are easy: at 0.03 little moves)."""
import copy, sys, warnings
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from qstudy.data import load
from qstudy.evaluation import evaluate, SCHEMA
from qstudy.attacks import run_attack, bounded, autograd_direction, cross_entropy, sign_rule
from conftest import REPO
sys.path.insert(0, str(REPO / 'examples'))
import side_by_side   # the small CNN and its few-second training, shared with examples/side_by_side.py
from qstudy.config import Run

N, EPS = 64, 0.1

@pytest.fixture(scope='module')
def digits():
    return load('digits', 'train'), load('digits', 'test')

def fit(m, digits, steps=300):
    "A few hundred Adam steps on digits (the example's `fit`)."
    (x, y), _ = digits
    return side_by_side.fit(m, x, y, steps)

cnn = side_by_side.cnn

@pytest.fixture(scope='module')
def float_cnn(digits): return fit(cnn(), digits)

@pytest.fixture(scope='module')
def brevitas_cnn(digits):
    qnn = pytest.importorskip('brevitas.nn')
    warnings.filterwarnings('ignore', module='brevitas')
    return fit(cnn(qnn.QuantConv2d, qnn.QuantReLU, qnn.QuantLinear, conv_kw=dict(weight_bit_width=2), act_kw=dict(bit_width=2),
                   lin_kw=dict(weight_bit_width=2, bias=True)), digits)

@pytest.mark.slow
def test_brevitas_bpda_is_not_pgd_under_another_name(digits, brevitas_cnn, float_cnn):
    """The issue's first lie: BPDA on a Brevitas model was bit-identical to sign steps on its own gradient. Now its
    shadow turns Brevitas' activation quantizer off, says so, and its examples differ from that plain attack's."""
    _, (xt, yt) = digits
    e = evaluate(brevitas_cnn, (xt, yt), reference=float_cnn, eps=EPS, n=N)
    assert e.quantization == dict(quantizer='Brevitas', weight_bits=[2], act_bits=[2])
    assert e.backward['bpda'] == '1 Brevitas activation quantizer(s) turned off'
    assert e.masking['masked'] and 'shattered' in e.masking['verdict']   # a 2-bit ReLU's STE disagrees with its forward
    x, y = xt[:N], yt[:N]
    p = dict(eps=EPS, steps=20, step_size=0.01)
    r = run_attack('bpda', brevitas_cnn, x, y, **p)
    own = bounded(brevitas_cnn, x, y, EPS, 20, autograd_direction(brevitas_cnn, cross_entropy), sign_rule(0.01), keep='first')
    assert not torch.equal(r.x_adv, own.x)
    # the reference was evaluated the same way and transfer was measured both ways, over all N points
    assert e.reference['n'] == N and e.transfer['from_reference']['n'] == N
    # the caller's model is untouched: its activation quantizer is still on
    assert brevitas_cnn[1].act_quant.is_quant_enabled
    d = e.to_dict()
    assert d['schema'] == SCHEMA and d['threat_model'] == 'Linf' and d['robust_acc'] <= min(a['accuracy'] for a in d['attacks'].values())

@pytest.mark.slow
def test_torch_ao_fake_quant(digits):
    "A torch.ao QAT model: its activation fake-quantizers are found, turned off in BPDA's shadow, weights kept."
    import torch.ao.quantization as tq
    warnings.filterwarnings('ignore', category=DeprecationWarning)
    m = nn.Sequential(tq.QuantStub(), *cnn(), tq.DeQuantStub())
    m.qconfig = tq.get_default_qat_qconfig('x86')
    m = fit(tq.prepare_qat(m.train()), digits, steps=200)
    _, (xt, yt) = digits
    e = evaluate(m, (xt, yt), eps=EPS, n=N)
    # x86's QAT qconfig: 8-bit weights, activations on 0..127 (reduce_range), i.e. 7 bits, as the card reports
    assert e.quantization == dict(quantizer='torch.ao', weight_bits=[8], act_bits=[7])
    r = run_attack('bpda', m, xt[:N], yt[:N], eps=EPS, steps=5, step_size=0.02)
    assert 'torch.ao activation fake-quantizer(s) turned off' in r.backward
    assert all(bool(f.fake_quant_enabled[0]) for f in m.modules() if isinstance(f, tq.FakeQuantizeBase))   # caller's model as it was

@pytest.mark.slow
def test_int8_onnx_graph_is_evaluated_gradient_free_and_by_transfer(digits, float_cnn, tmp_path):
    """onnxruntime's quantize_static graph: no autograd gradient, so the gradient attacks are skipped (said, not run
    on something else); Square runs on the graph, BIM transfers from the float reference; and as `deployed=` of the
    float model its agreement and replays are measured."""
    ort_q = pytest.importorskip('onnxruntime.quantization')
    from qstudy.deploy import OnnxModel
    (x, _), (xt, yt) = digits
    f32, i8 = tmp_path / 'f.onnx', tmp_path / 'i8.onnx'
    torch.onnx.export(copy.deepcopy(float_cnn), xt[:1], f32, input_names=['image'], dynamic_axes={'image': {0: 'batch'}}, dynamo=False)
    class Reader(ort_q.CalibrationDataReader):
        def __init__(self): self.it = iter([{'image': x[i:i + 32].numpy()} for i in range(0, 256, 32)])
        def get_next(self): return next(self.it, None)
    ort_q.quantize_static(str(f32), str(i8), Reader(), weight_type=ort_q.QuantType.QInt8)
    g = OnnxModel(str(i8))
    e = evaluate(g, (xt, yt), reference=float_cnn, eps=EPS, n=N)
    assert e.clean['accuracy'] > 0.8 and 'no gradient' in e.masking['verdict']
    assert set(e.attacks) == {'square'} and {'fgsm', 'bim', 'pgd_margin', 'bpda'} <= set(e.skipped)
    # int8 weights against the float model's 32-bit ones: measured beside it, at most half (a quarter, plus scales and biases)
    from qstudy.deploy import model_footprint
    assert 0 < e.footprint['weight_bytes'] < 0.5 * model_footprint(float_cnn)['weight_bytes']
    assert e.transfer['from_reference']['n'] == N and 'no autograd gradient' in e.transfer['to_reference']['skipped']
    d = evaluate(float_cnn, (xt, yt), deployed=str(i8), eps=EPS, n=N).deployed
    # per-tensor int8 moves logits by about 1 % of their range: the top class changes on few of the 64 points
    assert d['agreement']['accuracy'] > 0.9 and set(d['replay']) >= {'bim', 'worst case'} and d['square_on_graph']['n'] == N

def test_qstudy_w1a1(tmp_path_factory, digits):
    "qstudy's own binarized model: its quantizers' surrogates, named."
    from qstudy.training import train_model
    model, _ = train_model(Run('smoke', 'digits', run_dir=tmp_path_factory.mktemp('w')), 'w1a1', progress=False, epochs=2)
    _, (xt, yt) = digits
    e = evaluate(model, (xt, yt), eps=EPS, n=N)
    assert e.quantization == dict(quantizer='qstudy', weight_bits=[1], act_bits=[1])
    assert 'bpda' in e.attacks and 'qstudy activation quantizer' in e.backward['bpda']   # shattered: the aware attacks ran
    assert e.worst_case['accuracy'] <= e.attacks['bim']['accuracy']

FACTORY = '''
import torch
from torch import nn
class Rounded(nn.Module):
    "A CNN behind input quantization to 5 levels, with no straight-through estimator: its gradient is zero."
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(), nn.Linear(16 * 64, 10))
    def forward(self, x): return self.net(torch.round(x * 4) / 4)
def make(): return Rounded()
def flat(): return nn.Identity()   # images out: not logits
def broken(): raise RuntimeError('no')
'''

@pytest.mark.slow
def test_command_writes_a_card_for_a_model_saved_to_a_file(tmp_path, digits):
    "qstudy evaluate: a factory in a file and its weights give evaluation.json and a card that opens with the answer."
    import json, importlib.util
    from conftest import qstudy
    (tmp_path / 'mine.py').write_text(FACTORY)
    s = importlib.util.spec_from_file_location('mine', tmp_path / 'mine.py'); mod = importlib.util.module_from_spec(s); s.loader.exec_module(mod)
    torch.save(fit(mod.make(), digits, steps=200).state_dict(), tmp_path / 'w.pt')
    r = qstudy('evaluate', '--model', 'mine.py:make', '--weights', 'w.pt', '--dataset', 'digits', '--n', '48', '--eps', '0.1',
               '--out', 'card', '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads((tmp_path / 'card' / 'evaluation.json').read_text())
    assert list(d)[:6] == ['schema', 'clean_acc', 'robust_acc', 'n', 'eps', 'threat_model'] and d['n'] == 48
    assert 'vanishing gradient (bare round on the input path)' in d['masking']['verdict']
    page = (tmp_path / 'card' / 'card.html').read_text()
    assert d['summary'].split(':')[0] in page and "<img alt=" in page and '<figcaption>' in page
    from qstudy.study import page_problems
    assert page_problems(page) == [], page_problems(page)   # read as a reader would: no reprs, booleans, nan or code

@pytest.mark.parametrize('args, says', [
    (['--model', 'nothere.py:make'], 'no file nothere.py'),
    (['--model', 'mine.py:missing'], "has no callable 'missing'"),
    (['--model', 'mine.py:broken'], None),   # the factory raises: the user's bug, its own traceback
    (['--model', 'mine.py:make', '--weights', 'bad.pt'], 'do not fit mine.py:make'),
    (['--model', 'mine.py:flat'], 'must return logits'),
    (['--model', 'mine.py:make', '--eps', '3'], 'allowed: a number in (0, 1]'),
])
def test_command_bad_input_is_one_line_and_exit_2(tmp_path, args, says):
    from conftest import qstudy
    (tmp_path / 'mine.py').write_text(FACTORY)
    torch.save({'weight': torch.zeros(3)}, tmp_path / 'bad.pt')
    r = qstudy('evaluate', *args, '--dataset', 'digits', '--n', '8', '--out', 'o', cwd=tmp_path)
    if says is None: assert r.returncode == 1 and 'RuntimeError: no' in r.stderr; return
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr[-1500:]
    assert not (tmp_path / 'o' / 'evaluation.json').exists()


@pytest.mark.slow
def test_side_by_side_example_runs(tmp_path):
    "The README's example (examples/side_by_side.py) runs as written: both evaluations, each written as JSON."
    pytest.importorskip('brevitas.nn')
    evs = side_by_side.main(n=16, eps=EPS, out=tmp_path / 'out', runs=tmp_path / 'runs')
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['brevitas_w2a2.json', 'qstudy_w1a1.json']
    for e in evs.values():
        d = e.to_dict()
        assert d['schema'] == SCHEMA and d['worst_case']['n'] == 16 and d['reference'] is not None
