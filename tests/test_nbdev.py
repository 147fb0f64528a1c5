"""The notebooks are the source: the package must be exactly their export, and every notebook must run.

Everything runs on a temporary copy of the checkout, so a test never rewrites the files under test."""
import json, shutil, subprocess
import pytest
from conftest import REPO, BIN

def run(*cmd, cwd):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)

@pytest.fixture(scope='module')
def copy(tmp_path_factory):
    "The checkout's notebooks, package and settings, copied."
    d = tmp_path_factory.mktemp('checkout')
    for f in ('settings.ini', 'pyproject.toml', 'setup.py'): shutil.copy(REPO / f, d / f)
    for sub in ('nbs', 'qstudy'):
        shutil.copytree(REPO / sub, d / sub, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    return d

def snapshot(d, sub, pattern):
    return {p.relative_to(d): p.read_bytes() for p in sorted((d / sub).glob(pattern))}

def changed(before, after):
    return sorted(str(k) for k in before.keys() | after.keys() if before.get(k) != after.get(k))

def test_export_matches_package(copy):
    before = snapshot(copy, 'qstudy', '*.py')
    r = run(BIN / 'nbdev_export', cwd=copy)
    assert r.returncode == 0, r.stderr
    assert changed(before, snapshot(copy, 'qstudy', '*.py')) == [], "nbdev_export changed the package; re-export and commit"

def test_notebooks_are_clean(copy):
    before = snapshot(copy, 'nbs', '*.ipynb')
    r = run(BIN / 'nbdev_clean', cwd=copy)
    assert r.returncode == 0, r.stderr
    assert changed(before, snapshot(copy, 'nbs', '*.ipynb')) == [], "nbdev_clean changed notebooks; run it and commit"

def test_parameters_tag_survives_clean(copy):
    run(BIN / 'nbdev_clean', cwd=copy)
    for nb in (copy / 'nbs').glob('report_*.ipynb'):
        cells = json.loads(nb.read_text())['cells']
        assert any('parameters' in c['metadata'].get('tags', []) for c in cells), nb.name

@pytest.mark.slow
def test_every_notebook_runs(copy):
    # the report notebooks read a study's run store and compute nothing: the smoke study runs them (test_study)
    r = run(BIN / 'nbdev_test', '--n_workers', '1', '--do_print', '--skip_file_re', '^report_', cwd=copy / 'nbs')
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
