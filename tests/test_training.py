"""train_model: stored once, loaded after, retrained when the config changes; determinism."""
import json, logging
import torch
from qstudy.training import train_model
from qstudy import store

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)

def test_second_call_loads_and_changed_config_retrains(tmp_path):
    m1, r1 = train_model('w1a1', 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=1)
    m2, r2 = train_model('w1a1', 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=1)
    assert r1['saved_at'] == r2['saved_at'] and len(store.list_artifacts(tmp_path, 'models')) == 1
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()): assert torch.equal(a, b)
    train_model('w1a1', 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=2)
    assert len(store.list_artifacts(tmp_path, 'models')) == 2
    # BinaryConnect: stored real-valued weights of the binary layers stay in [-1, 1]
    last = f'{len(m1) - 1}.weight'  # the output layer stays full precision and unclipped
    binary = [v for k, v in m1.state_dict().items() if k.endswith('weight') and v.dim() in (2, 4) and k != last]
    assert len(binary) == 8
    assert all(v.abs().max() <= 1 for v in binary)

def test_record_is_complete(tmp_path):
    _, r = train_model('float', 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=1)
    for k in ('config', 'accuracy', 'n_test', 'n_correct', 'train_seconds', 'versions', 'git_commit', 'seed', 'epochs'):
        assert k in r
    assert r['n_test'] == 360 and abs(r['accuracy'] - r['n_correct'] / 360) < 1e-9

def test_same_seed_same_weights(tmp_path):
    a, _ = train_model('w2a2', 'digits', 'smoke', run_dir=tmp_path / 'a', progress=False, epochs=1)
    b, _ = train_model('w2a2', 'digits', 'smoke', run_dir=tmp_path / 'b', progress=False, epochs=1)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()): assert torch.equal(x, y)
