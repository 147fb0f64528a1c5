"""Quantizers: exact levels, straight-through gradients by their rules, BinaryConnect clipping."""
import pytest, torch
from qstudy.quantizers import binarize, quantize_k, dorefa_weight, dorefa_act, QLinear, clip_binary_weights, check_bits

@pytest.mark.parametrize('k', [2, 3, 4])
def test_k_bit_gives_exactly_2k_values(k):
    g = torch.Generator().manual_seed(k)
    w = torch.rand(5000, generator=g) * 4 - 2
    assert dorefa_weight(w, k).unique().numel() == 2 ** k
    assert dorefa_act(torch.rand(5000, generator=g) * 3 - 1, k).unique().numel() == 2 ** k
    levels = dorefa_weight(w, k).unique()
    assert torch.allclose(levels, torch.linspace(-1, 1, 2 ** k))  # evenly spaced over [-1, 1]

def test_sign_gives_plus_minus_one():
    assert set(binarize(torch.randn(1000)).unique().tolist()) == {-1.0, 1.0}
    assert binarize(torch.zeros(1)).item() == 1.0

def test_sign_gradient_rule():
    x = torch.tensor([-3., -1., -0.3, 0.3, 1., 1.0001, 3.], requires_grad=True)
    binarize(x).backward(torch.arange(1., 8.))
    assert x.grad.tolist() == [0., 2., 3., 4., 5., 0., 0.]  # upstream gradient where |x| <= 1, else 0

def test_round_and_clip_gradient_rules():
    x = torch.tensor([-0.5, 0.2, 0.49, 0.8, 1.5], requires_grad=True)
    dorefa_act(x, 2).backward(torch.ones(5))
    assert x.grad.tolist() == [0., 1., 1., 1., 0.]  # round passes straight through; clip(0, 1) blocks outside
    w = torch.tensor([0.1, -0.4, 0.7], requires_grad=True)
    dorefa_weight(w, 3).sum().backward()
    # straight-through round: d/dw [2·(tanh(w)/(2m) + 1/2) − 1] with m = max|tanh(w)| held constant
    m = torch.tanh(w.detach()).abs().max()
    assert torch.allclose(w.grad, (1 - torch.tanh(w.detach()) ** 2) / m)

def test_authors_variant_skips_normalisation():
    w = torch.tensor([-0.05, 0.01, 0.05])
    assert torch.allclose(dorefa_weight(w, 2), torch.tensor([-1., 1/3, 1.]))  # normalised: spans the levels
    assert torch.allclose(dorefa_weight(w, 2, max_norm=False), torch.tensor([-1/3, 1/3, 1/3]))  # stuck in the middle

def test_binaryconnect_weights_stay_clipped():
    torch.manual_seed(0)
    lin = QLinear(8, 4, wbits=1)
    opt = torch.optim.Adam(lin.parameters(), lr=1.0)  # a huge step would leave [-1, 1] without the clip
    for _ in range(5):
        opt.zero_grad(); lin(torch.randn(16, 8)).pow(2).sum().backward(); opt.step(); clip_binary_weights(lin)
        assert lin.weight.abs().max() <= 1

def test_bad_bitwidth():
    for b in (0, 5, 8, 16):
        with pytest.raises(ValueError, match=f'bit-width {b} is not supported; allowed: 1, 2, 3, 4 or 32'): check_bits(b)
