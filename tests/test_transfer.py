"""Transfer: a rerun recrafts nothing; the gradient cosine matrix is symmetric with a unit diagonal."""
import logging
import numpy as np
import torch
from qstudy import metrics
from qstudy.transfer import transfer_matrix
from qstudy.gradients import loss_gradients, cosine_matrix
from qstudy.training import train_model
from qstudy.data import load

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)
KW = dict(profile='smoke', sources=['float', 'w1a1'], targets=['float', 'w1a1'], n=10, train_overrides=dict(epochs=1),
          attack_overrides=dict(bim=dict(steps=5), cwl2=dict(steps=5, binary_search_steps=1)))

def test_rerun_reuses_stored_examples(tmp_path, monkeypatch):
    calls = []
    real = metrics.attack
    monkeypatch.setattr(metrics, 'attack', lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    first = transfer_matrix('digits', attacks=('fgsm', 'cwl2'), kappas=(5, 10), run_dir=tmp_path, **KW)
    crafted = len(calls)
    assert crafted == 2 * (1 + 2)  # two sources × (FGSM + CW-L2 at two κ), one batch each
    second = transfer_matrix('digits', attacks=('fgsm', 'cwl2'), kappas=(5, 10), run_dir=tmp_path, **KW)
    assert len(calls) == crafted  # nothing crafted again
    assert first.equals(second)
    assert set(first.kappa.dropna()) <= {5.0, 10.0} and first[first.attack == 'fgsm'].kappa.isna().all()

def test_cosine_matrix_symmetric_unit_diagonal(tmp_path):
    x, y = load('digits', 'test')
    g = {m: loss_gradients(train_model(m, 'digits', 'smoke', run_dir=tmp_path, progress=False, epochs=1)[0], x[:50], y[:50])
         for m in ('float', 'w1a32', 'w3a3')}
    mean, std, n = cosine_matrix(g)
    assert np.allclose(np.diag(mean), 1, atol=1e-5) and np.allclose(mean, mean.T, atol=1e-6)
    assert (np.abs(mean) <= 1 + 1e-6).all()
