"""Every dataset loads, is verified, and fails with one clear line when the data is missing or damaged."""
import gzip, io, os, pickle, shutil, time
from pathlib import Path
import numpy as np
import pytest
import torch
from conftest import shared_data, qstudy
from qstudy import data
from qstudy.data import load, DataError, describe

SVHN_COUNTS = [684, 1968, 1590, 1104, 964, 909, 773, 767, 621, 620]  # shared/data/svhn/README.txt
needs_shared = pytest.mark.skipif(shared_data() is None, reason='QSTUDY_DATA (the offline data) is not set')

def check_split(x, y, n):
    assert x.shape == (n, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    assert 0 <= y.min() and y.max() <= 9

def test_digits_always_there():
    x, y = load('digits', 'train'); check_split(x, y, 1437)
    xt, yt = load('digits', 'test'); check_split(xt, yt, 360)
    assert torch.bincount(yt).min() >= 35  # stratified: each digit has ~36 test points

@needs_shared
@pytest.mark.slow
def test_cifar10_offline_cold_then_warm():
    t0 = time.time(); x, y = load('cifar10', 'test'); cold = time.time() - t0
    check_split(x, y, 10000)
    assert torch.bincount(y).tolist() == [1000] * 10
    t0 = time.time(); x2, _ = load('cifar10', 'test'); warm = time.time() - t0
    assert torch.equal(x, x2)
    print(f"cifar10 test load: cold {cold:.1f} s, warm {warm:.2f} s")
    xtr, ytr = load('cifar10', 'train'); check_split(xtr, ytr, 50000)
    assert torch.bincount(ytr).tolist() == [5000] * 10
    # per-channel means of the JPEG copy, as its README states them (0.4913, 0.4821, 0.4465)
    assert torch.allclose(xtr.mean((0, 2, 3)), torch.tensor([0.4913, 0.4821, 0.4465]), atol=2e-4)

@needs_shared
def test_cache_is_reused(monkeypatch):
    load('svhn', 'test')
    def no_decoding(*a): raise AssertionError('decoded again instead of reading the cache')
    monkeypatch.setitem(data.READERS, 'svhn_subset', no_decoding)
    x, y = load('svhn', 'test')
    assert len(y) == 2000

@needs_shared
def test_svhn_offline_subset_is_marked_and_stratified():
    xtr, ytr = load('svhn', 'train'); xte, yte = load('svhn', 'test')
    check_split(xtr, ytr, 8000); check_split(xte, yte, 2000)
    assert (torch.bincount(ytr) + torch.bincount(yte)).tolist() == SVHN_COUNTS
    info = describe('svhn')
    assert info['official'] is False and 'NOT the official SVHN split' in info['note']

def test_unknown_dataset_and_split():
    with pytest.raises(DataError, match="unknown dataset 'mnist'; allowed: cifar10, svhn, digits"): load('mnist', 'train')
    with pytest.raises(DataError, match="unknown split 'val'; allowed: train, test"): load('digits', 'val')

def test_missing_offline_names_files_and_fix(tmp_path):
    with pytest.raises(DataError) as e: load('cifar10', 'test', root=tmp_path, download_ok=False)
    msg = str(e.value)
    assert '\n' not in msg and 'cifar-10-python.tar.gz' in msg and 'cifar10-test.tar.gz' in msg and 'QSTUDY_DATA' in msg

def no_cache_files():
    return [p for p in Path(os.environ['QSTUDY_CACHE']).glob('*') if p.name.startswith('.')]

@needs_shared
def test_truncated_archive(tmp_path):
    src = shared_data() / 'cifar10' / 'cifar10-test.tar.gz'
    (tmp_path / 'cifar10-test.tar.gz').write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(DataError, match='truncated or corrupt') as e: load('cifar10', 'test', root=tmp_path, download_ok=False)
    assert 'cifar10-test.tar.gz' in str(e.value) and '\n' not in str(e.value)
    assert no_cache_files() == []  # nothing half-written

@needs_shared
def test_checksum_mismatch(tmp_path):
    with np.load(shared_data() / 'svhn' / 'svhn-test.npz') as d: x, y = d['x'].copy(), d['y']
    x[0, 0, 0, 0] ^= 1  # one bit of one pixel
    np.savez(tmp_path / 'svhn-test.npz', x=x, y=y)
    with pytest.raises(DataError, match='checksum .* does not match'): load('svhn', 'train', root=tmp_path, download_ok=False)
    assert no_cache_files() == []

def test_official_cifar_batches_are_read(tmp_path):
    "The official python batches (extracted folder) decode to the documented layout."
    d = tmp_path / 'cifar-10-batches-py'; d.mkdir()
    rng = np.random.default_rng(0)
    for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
        pix = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        (d / name).write_bytes(pickle.dumps({b'data': pix, b'labels': [0, 1, 2, 9]}))
    x, y = load('cifar10', 'test', root=tmp_path, download_ok=False)
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 1, 2, 9]
    # the first 1024 values of a row are the red channel of the 32×32 image, row-major
    assert torch.allclose(x[3, 0].flatten() * 255, torch.from_numpy(pix[3, :1024]).float())
    assert len(load('cifar10', 'train', root=tmp_path, download_ok=False)[1]) == 20

def test_official_svhn_mat_checked_then_read(tmp_path, monkeypatch):
    from scipy.io import savemat
    X = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 3), dtype=np.uint8)
    savemat(tmp_path / 'test_32x32.mat', {'X': X, 'y': np.array([[10], [1], [9]])})
    with pytest.raises(DataError, match='checksum'): load('svhn', 'test', root=tmp_path, download_ok=False)
    fake = data.file_digest(tmp_path / 'test_32x32.mat')
    monkeypatch.setitem(data.OFFICIAL, 'test_32x32.mat', (data.OFFICIAL['test_32x32.mat'][0], fake))
    x, y = load('svhn', 'test', root=tmp_path, download_ok=False)
    assert y.tolist() == [0, 1, 9]  # label 10 is digit 0
    assert torch.allclose(x[2].permute(1, 2, 0) * 255, torch.from_numpy(X[..., 2]).float())

def test_datamodule_seeded_and_subset():
    from qstudy.data import StudyData
    a, b = StudyData('digits', seed=1, train_size=500), StudyData('digits', seed=1, train_size=500)
    a.setup(); b.setup()
    assert len(a.train) + len(a.val) == 500 and torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert torch.equal(next(iter(a.train_dataloader()))[1], next(iter(b.train_dataloader()))[1])

def test_data_command_lists_datasets():
    r = qstudy('data')
    assert r.returncode == 0, r.stderr
    assert 'digits' in r.stdout and '1437' in r.stdout
    if shared_data(): assert '50000' in r.stdout and '8000' in r.stdout and 'NOT the official' in r.stdout
