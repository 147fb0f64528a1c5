"""Transfer: a rerun recrafts nothing; the gradient cosine on known directions and per point."""
import logging
import numpy as np
import torch
from qstudy import metrics
from qstudy.transfer import transfer_matrix
from qstudy.gradients import loss_gradients, cosine_matrix
from qstudy.training import train_model
from qstudy.data import load
from qstudy.config import Run

logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)
KW = dict(sources=['float', 'w1a1'], targets=['float', 'w1a1'], n=10,
          attack_overrides=dict(bim=dict(steps=5), cwl2=dict(steps=5, binary_search_steps=1)))

def test_rerun_reuses_stored_examples(tmp_path, monkeypatch):
    calls = []
    real = metrics.run_attack
    monkeypatch.setattr(metrics, 'run_attack', lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    first = transfer_matrix(Run('smoke', 'digits', run_dir=tmp_path, overrides=dict(epochs=1)), ('fgsm', 'cwl2'), kappas=(5, 10), **KW)
    crafted = len(calls)
    assert crafted == 2 * (1 + 2)  # two sources × (FGSM + CW-L2 at two κ), one batch each
    second = transfer_matrix(Run('smoke', 'digits', run_dir=tmp_path, overrides=dict(epochs=1)), ('fgsm', 'cwl2'), kappas=(5, 10), **KW)
    assert len(calls) == crafted  # nothing crafted again
    assert first.equals(second)
    assert set(first.kappa.dropna()) <= {5.0, 10.0} and first[first.attack == 'fgsm'].kappa.isna().all()

def test_cosine_matrix_on_known_directions():
    "Parallel, opposite and orthogonal gradients give 1, -1 and 0; a zero gradient is left out and counted."
    g = torch.tensor([[1., 0., 0.], [0., 2., 0.], [1., 1., 0.]])
    grads = dict(a=g, minus=-3 * g, ortho=torch.tensor([[0., 1., 0.], [0., 0., 5.], [1., -1., 0.]]),
                 dead=torch.tensor([[0., 0., 0.], [0., 1., 0.], [0., 0., 0.]]))
    mean, std, n = cosine_matrix(grads)
    assert np.allclose(mean[0], [1, -1, 0, 1], atol=1e-6)   # 'dead' has one live point, parallel to a's
    assert n[0].tolist() == [3, 3, 3, 1] and np.isnan(std[0, 3])

def test_loss_gradients_do_not_depend_on_the_batch(tmp_path):
    "Each point's gradient is its own: computed in batches of 7 or all at once, the same rows."
    x, y = load('digits', 'test')
    model = train_model(Run('smoke', 'digits', run_dir=tmp_path), 'float', progress=False, epochs=1)[0]
    a, b = loss_gradients(model, x[:50], y[:50], batch=7), loss_gradients(model, x[:50], y[:50], batch=50)
    # float32 sums run in another order at another batch size: equal to a relative 1e-4, not bit for bit
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-7) and (a.norm(dim=1) > 0).all()
