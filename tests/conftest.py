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
