"""train_model: stored once, loaded after, retrained when the config changes; determinism."""
import json, logging
import torch
from qstudy.training import train_model, predict
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

def test_record_says_what_the_stored_model_does(tmp_path):
    "The record's numbers are those of the weights stored beside it, and its name is its config's hash."
    from qstudy.data import load
    from qstudy.config import config_hash
    m, r = train_model('float', 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=1)
    x, y = load('digits', 'test')
    loaded, _ = train_model('float', 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=1)  # from the store
    pred = predict(loaded, x)
    assert r['n_test'] == len(y) == 360 and r['n_correct'] == int((pred == y).sum())
    assert abs(r['accuracy'] - r['n_correct'] / r['n_test']) < 1e-12 and r['epochs'] == 1 and r['train_seconds'] > 0
    assert r['versions']['torch'] == torch.__version__
    assert r['hash'] == config_hash(r['config']) and store.artifact_dir(tmp_path, 'models', r['config'], 'float').exists()
    assert r['config']['code'] and r['config']['epochs'] == 1   # the code's version is part of what names it

def test_changed_code_is_not_reused(tmp_path, monkeypatch):
    "A model trained by other code (another quantizer, say) is not loaded: its config names another version."
    from qstudy import training
    _, r1 = train_model('w1a1', 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=1)
    monkeypatch.setattr(training, 'code_version', lambda *m: 'changedcode0')
    _, r2 = train_model('w1a1', 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=1)
    assert r2['hash'] != r1['hash'] and len(store.list_artifacts(tmp_path, 'models')) == 2

def test_same_seed_same_weights(tmp_path):
    a, _ = train_model('w2a2', 'digits', 'smoke', run_dir=tmp_path / 'a', progress=False, epochs=1)
    b, _ = train_model('w2a2', 'digits', 'smoke', run_dir=tmp_path / 'b', progress=False, epochs=1)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()): assert torch.equal(x, y)

def test_training_reads_no_uninitialized_memory(tmp_path, monkeypatch):
    "Without the NaN fill of new tensors the weights are exactly those trained with it: no kernel reads unwritten memory."
    import lightning as L
    from qstudy import training
    class Flags(L.Callback):  # what the fit actually ran under: else two identical runs would prove nothing
        def on_train_start(self, trainer, lit):
            self.seen = (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory)
    # float trains channels_last; the sign and the level quantizers in the default layout, through straight-through
    for name in ('float', 'w1a1', 'w2a2'):
        weights = {}
        for fill in (False, True):
            monkeypatch.setattr(training, 'FILL_UNINITIALIZED', fill)
            flags = Flags()
            weights[fill], _ = train_model(name, 'digits', 'smoke', run_dir=tmp_path / f'{name}-{fill}', progress=False,
                                           epochs=1, trainer_kwargs=dict(callbacks=[flags]))
            assert flags.seen == (True, fill)
        for a, b in zip(weights[False].state_dict().values(), weights[True].state_dict().values()): assert torch.equal(a, b)
