"""train_model: stored once, loaded after, retrained when the config changes; determinism."""
import json, logging
import pytest, torch
from qstudy.training import train_model, predict
from qstudy import store
from qstudy.config import Run

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)

def test_second_call_loads_and_changed_config_retrains(tmp_path):
    m1, r1 = train_model(Run('smoke', 'digits', run_dir=tmp_path), 'w1a1', progress=False, epochs=1)
    m2, r2 = train_model(Run('smoke', 'digits', run_dir=tmp_path), 'w1a1', progress=False, epochs=1)
    assert r1['saved_at'] == r2['saved_at'] and len(store.list_artifacts(tmp_path, 'models')) == 1
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()): assert torch.equal(a, b)
    train_model(Run('smoke', 'digits', run_dir=tmp_path), 'w1a1', progress=False, epochs=2)
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
    m, r = train_model(Run('smoke', 'digits', run_dir=tmp_path), 'float', progress=False, epochs=1)
    x, y = load('digits', 'test')
    loaded, _ = train_model(Run('smoke', 'digits', run_dir=tmp_path), 'float', progress=False, epochs=1)  # from the store
    pred = predict(loaded, x)
    assert r['n_test'] == len(y) == 360 and r['n_correct'] == int((pred == y).sum())
    assert abs(r['accuracy'] - r['n_correct'] / r['n_test']) < 1e-12 and r['epochs'] == 1 and r['train_seconds'] > 0
    assert r['versions']['torch'] == torch.__version__
    assert r['hash'] == config_hash(r['config']) and store.artifact_dir(tmp_path, 'models', r['config'], 'float').exists()
    assert r['config']['version'] and r['config']['epochs'] == 1   # the stage's version is part of what names it
    assert r['ran']['precision'] == '32-true' and r['source'] == 'trained'  # what ran: recorded, not in the name

def test_changed_stage_version_is_not_reused(tmp_path, monkeypatch):
    "A model trained by code whose numbers changed (its stage version bumped) is not loaded."
    from qstudy import training
    _, r1 = train_model(Run('smoke', 'digits', run_dir=tmp_path), 'w1a1', progress=False, epochs=1)
    monkeypatch.setattr(training, 'STAGE_VERSION', dict(training.STAGE_VERSION, models=99))
    _, r2 = train_model(Run('smoke', 'digits', run_dir=tmp_path), 'w1a1', progress=False, epochs=1)
    assert r2['hash'] != r1['hash'] and len(store.list_artifacts(tmp_path, 'models')) == 2

def test_same_seed_same_weights(tmp_path):
    a, _ = train_model(Run('smoke', 'digits', run_dir=tmp_path / 'a'), 'w2a2', progress=False, epochs=1)
    b, _ = train_model(Run('smoke', 'digits', run_dir=tmp_path / 'b'), 'w2a2', progress=False, epochs=1)
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
            weights[fill], _ = train_model(Run('smoke', 'digits', run_dir=tmp_path / f'{name}-{fill}'), name, progress=False,
                                           epochs=1, trainer_kwargs=dict(callbacks=[flags]))
            assert flags.seen == (True, fill)
        for a, b in zip(weights[False].state_dict().values(), weights[True].state_dict().values()): assert torch.equal(a, b)

def test_store_from_a_bf16_machine_is_found_on_an_fp32_one(tmp_path, monkeypatch):
    "The precision asked for names a model; what `auto` became on the training machine is only recorded."
    from qstudy import training
    from qstudy.training import model_record
    monkeypatch.setattr(training, 'resolve_precision', lambda p, device=None: 'bf16-mixed' if p == 'auto' else p)
    _, r = train_model(Run('smoke', 'digits', run_dir=tmp_path), 'w1a1', progress=False, epochs=1, precision='auto')
    assert r['ran']['precision'] == 'bf16-mixed' and r['config']['precision'] == 'auto'
    monkeypatch.setattr(training, 'resolve_precision', lambda p, device=None: '32-true' if p == 'auto' else p)
    assert model_record(Run('smoke', 'digits', run_dir=tmp_path), 'w1a1', epochs=1, precision='auto')['hash'] == r['hash']

@pytest.mark.slow
def test_a_comment_in_every_module_leaves_status_complete(tmp_path):
    "No artifact is named by source text: a copy of the package with a comment added to every module finds every model."
    import shutil, subprocess, sys
    from conftest import REPO, qstudy
    run = tmp_path / 'runs'
    r = qstudy('train', '--profile', 'smoke', '--models', 'float', 'w2a2', '--run-dir', run, '--quiet')
    assert r.returncode == 0, r.stderr
    pkg = tmp_path / 'edited'
    shutil.copytree(REPO / 'qstudy', pkg / 'qstudy', ignore=shutil.ignore_patterns('__pycache__', 'shipped'))
    mods = sorted((pkg / 'qstudy').glob('*.py'))
    assert len(mods) >= 15
    for f in mods: f.write_text(f.read_text() + '\n# an edited comment\n')
    code = ("import sys, qstudy; from qstudy.study import status; assert qstudy.__file__.startswith(sys.argv[1]); "
            "print('\\n'.join(status('smoke', 'digits', sys.argv[2], ['float', 'w2a2'])))")
    out = subprocess.run([sys.executable, '-c', code, str(pkg), str(run)], capture_output=True, text=True,
                         cwd=tmp_path, env={**__import__('os').environ, 'PYTHONPATH': str(pkg)})
    assert out.returncode == 0, out.stderr
    assert [l.split()[2] for l in out.stdout.splitlines() if l.strip().startswith('model')] == ['done', 'done'], out.stdout

@pytest.mark.slow
def test_killed_training_resumes_from_its_last_epoch(tmp_path):
    "A run killed (SIGKILL) mid-training resumes from its checkpoint and ends with an uninterrupted run's weights."
    import os, signal, subprocess, sys, time
    import lightning as L
    from qstudy.config import config_hash
    kw = dict(progress=False, epochs=5, recipe='authors')
    slow = ("import sys, time, lightning as L; from qstudy.training import train_model; from qstudy.config import Run\n"
            "class Slow(L.Callback):\n"
            "    def on_train_epoch_end(self, *a): time.sleep(1)  # time for the test to kill it between checkpoints\n"
            "train_model(Run('smoke', 'digits', run_dir=sys.argv[1]), 'w2a2', progress=False, epochs=5, recipe='authors',\n"
            "            trainer_kwargs=dict(callbacks=[Slow()]))\n")
    p = subprocess.Popen([sys.executable, '-c', slow, str(tmp_path / 'b')])
    ckpt, t0 = None, time.time()
    while ckpt is None and time.time() - t0 < 300 and p.poll() is None:
        ckpt = next((tmp_path / 'b' / 'models').glob('*/training/last.ckpt'), None) if (tmp_path / 'b' / 'models').exists() else None
        time.sleep(0.05)
    assert ckpt is not None, 'no checkpoint was written'
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert not any((tmp_path / 'b' / 'models').glob('*/record.json'))  # killed before the end
    class First(L.Callback):
        epochs = []
        def on_train_epoch_start(self, trainer, lit): self.epochs.append(trainer.current_epoch)
    b, rb = train_model(Run('smoke', 'digits', run_dir=tmp_path / 'b'), 'w2a2', trainer_kwargs=dict(callbacks=[First()]), **kw)
    assert First.epochs[0] >= 1 and len(rb['curve']) == 5  # resumed after a finished epoch, the curve whole
    assert [r['lr'] for r in rb['curve']] == [3e-3] * 3 + [1.5e-3] * 2  # the rate each epoch ran at: the schedule resumed too
    a, ra = train_model(Run('smoke', 'digits', run_dir=tmp_path / 'a'), 'w2a2', **kw)
    assert ra['curve'][-1]['val_acc'] == rb['curve'][-1]['val_acc']
    for x, y in zip(a.state_dict().values(), b.state_dict().values()): assert torch.equal(x, y)
    assert not ckpt.exists()  # no optimizer state once the model is stored
