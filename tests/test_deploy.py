"""Deployment: the exported ONNX graphs agree with the trained models, hold integer tensors, and see uint8 pixels exactly."""
import logging
import onnx, pytest, torch
from qstudy.deploy import export_onnx, OnnxModel, integer_initializers, uint8_pixels, from_uint8, agreement, UnsupportedLayer
from qstudy.quantizers import QConv2d, QLinear, QAct
from qstudy.training import train_model, predict
from qstudy.data import load
from qstudy.config import Run

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    runs = tmp_path_factory.mktemp('runs')
    return {m: train_model(Run('smoke', 'digits', run_dir=runs), m, progress=False)[0].eval() for m in ('float', 'w1a1', 'w2a2', 'w4a32')}

@pytest.mark.parametrize('name', ['float', 'w1a1', 'w2a2', 'w4a32'])
def test_graph_agrees_with_the_trained_model(trained, name):
    model = trained[name]
    graph = export_onnx(model)
    x, y = load('digits', 'test')
    a = agreement(model, graph, x, y)
    print(name, a)
    # the graph differs from PyTorch by float32 summation order and a folded batch norm (~1e-5 on the logits);
    # top-1 can differ only where a pre-activation sits on a quantization threshold and the point near a decision
    # boundary: a few in a thousand at most, so 0.99 on the 360 test points is a floor no sound export misses
    assert a['agree'] / a['n'] >= 0.99, a
    assert a['median_logit_diff'] < 1e-3, a
    if name == 'float': assert a['max_logit_diff'] < 1e-3, a   # no quantizer, no threshold to cross
    test_pred = predict(OnnxModel(graph), x)   # called like the PyTorch model
    assert test_pred.shape == y.shape

@pytest.mark.parametrize('name', ['w1a1', 'w2a2', 'w4a32'])
def test_quantized_graph_holds_integers(trained, name):
    model = trained[name]
    graph = export_onnx(model)
    m = onnx.load_from_string(graph)
    layers = [mod for mod in model.modules() if isinstance(mod, (QConv2d, QLinear))]
    int8 = [t for t in m.graph.initializer if t.data_type == onnx.TensorProto.INT8 and t.name.startswith('w_int8')]
    assert len(int8) == len(layers) == 8   # six convolutions and two hidden dense layers, each as int8 levels
    bits = layers[0].wbits
    levels = set(int(v) for t in int8 for v in onnx.numpy_helper.to_array(t).flatten())
    n = 1 if bits == 1 else 2 ** bits - 1
    assert levels <= set(range(-n, n + 1, 2))   # ±1, or the odd integers of DoReFa's 2^k levels
    ops = [node.op_type for node in m.graph.node]
    acts = sum(isinstance(mod, QAct) and mod.abits < 32 for mod in model.modules())
    assert ops.count('QuantizeLinear') == acts   # every quantized activation held on its integer levels
    assert integer_initializers(graph).get('INT8', 0) >= 8

def test_uint8_rounding_is_exact():
    p = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(uint8_pixels(from_uint8(p)), p)          # every pixel value comes back as itself
    x = torch.rand(4, 3, 32, 32)
    r = from_uint8(uint8_pixels(x))
    assert (r - x).abs().max() <= 0.5 / 255 + 1e-7               # the nearest pixel
    assert torch.equal(uint8_pixels(r), uint8_pixels(x))         # rounding twice changes nothing

def test_unsupported_layer_one_clear_error():
    with pytest.raises(UnsupportedLayer, match='layer Tanh'): export_onnx(torch.nn.Sequential(torch.nn.Tanh()))
