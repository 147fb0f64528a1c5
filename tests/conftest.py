import os, sys, subprocess
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parent.parent
# QSTUDY_DATA may be relative to the repository root (as .ci/run sets it); notebooks and subprocesses run
# elsewhere, so make it absolute once.
if os.environ.get('QSTUDY_DATA'):
    os.environ['QSTUDY_DATA'] = str((REPO / os.environ['QSTUDY_DATA']).resolve())
BIN = Path(sys.executable).parent

def shared_data():
    "The offline data folder, or None (tests that need it are skipped, and say so)."
    p = os.environ.get('QSTUDY_DATA')
    return Path(p) if p and Path(p).exists() else None

@pytest.fixture(scope='session', autouse=True)
def private_cache(tmp_path_factory):
    "Decoded-array cache in a temporary folder: tests never depend on, or pollute, the user's cache."
    os.environ['QSTUDY_CACHE'] = str(tmp_path_factory.mktemp('cache'))

def qstudy(*args, cwd=None, env=None, **kw):
    "Run the qstudy command; CompletedProcess with text output."
    return subprocess.run([str(BIN / 'qstudy'), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, **kw)


# the fast tier: `pytest -m "not slow"` (about 3 minutes on 2 cores; the README's command runs everything, about 15).
# Slow: the tests measured at ~9 s or more in the full suite (882 s on 2 cores), and every test of test_study.py that
# reads the smoke study (its module fixture runs the README's main job, 207 s)
def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: left out of the fast tier (pytest -m "not slow")')

def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ == 'test_study' and {'smoke', 'regime'} & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
