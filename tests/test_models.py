"""Appendix A networks: parameter counts from Table 8, quantized activations, clear errors."""
import pytest, torch
from qstudy.models import build_model, count_params, activation_values, MODEL_NAMES, model_bits
from qstudy.quantizers import QConv2d, QLinear

def table8_params(conv4):
    "Parameters of Table 8's network: bias-free hidden layers (batchnorm has the shift), 2 params per BN channel."
    filters = [128, 128, 256, conv4, 512, 512]
    convs = 3 * 128 * 9 + sum(a * b * 9 for a, b in zip(filters[:-1], filters[1:]))
    bn = 2 * (sum(filters) + 1024 + 1024)
    fcs = 512 * 4 * 4 * 1024 + 1024 * 1024   # 32 → 4 after three 2×2 max-pools
    out = 1024 * 10 + 10                      # last layer keeps its bias
    return convs + bn + fcs + out

@pytest.mark.parametrize('dataset,conv4', [('cifar10', 256), ('svhn', 128)])
def test_parameter_count_at_width_1(dataset, conv4):
    want = table8_params(conv4)
    for name in ('float', 'w1a1', 'w3a32'):
        assert count_params(build_model(name, dataset)) == want
    if dataset == 'cifar10': assert round(want / 1e6, 1) == 14.0  # REFERENCE.md §4: 14.0 M at width 1

def test_all_names_build_and_return_logits():
    x = torch.rand(2, 3, 32, 32)
    for n in MODEL_NAMES:
        m = build_model(n, 'cifar10', 0.0625).eval()
        assert m(x).shape == (2, 10)

@pytest.mark.parametrize('k', [1, 2, 3, 4])
def test_full_models_quantize_every_hidden_activation(k):
    torch.manual_seed(k)
    m = build_model(f'w{k}a{k}', 'cifar10', 0.125)
    m.train(); m(torch.rand(64, 3, 32, 32)); m.eval()  # give batchnorm non-trivial statistics
    vals = activation_values(m, torch.rand(32, 3, 32, 32))
    assert len(vals) == 8 and all(len(v) <= 2 ** k for v in vals)
    if k == 1: assert all(set(v.tolist()) <= {-1., 1.} for v in vals)

def test_weight_only_models_leave_activations_real():
    m = build_model('w2a32', 'cifar10', 0.125).eval()
    vals = activation_values(m, torch.rand(32, 3, 32, 32))
    assert all(len(v) > 16 for v in vals)  # a ReLU output, not a handful of levels
    qs = [l for l in m.modules() if isinstance(l, (QConv2d, QLinear))]
    assert len(qs) == 8 and all(l.wbits == 2 for l in qs)
    assert type(m[-1]) is torch.nn.Linear  # the last layer stays full precision

def test_errors():
    with pytest.raises(ValueError, match="unknown model 'w5a5'"): build_model('w5a5', 'cifar10')
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"): build_model('float', 'mnist')
    for w in (0, -1, 'x'):
        with pytest.raises(ValueError, match='must be a positive number'): build_model('float', 'cifar10', w)
