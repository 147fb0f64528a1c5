"""The notebooks are the source: the package must be exactly their export, and every notebook must run."""
import subprocess, shutil
from conftest import REPO, BIN

def run(*cmd, cwd=REPO):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)

def test_export_matches_package():
    r = run(BIN / 'nbdev_export')
    assert r.returncode == 0, r.stderr
    d = run('git', 'status', '--porcelain', '--', 'qstudy', 'nbs')
    assert d.stdout == '', f"nbdev_export changed the package; re-export and commit:\n{d.stdout}"

def test_notebooks_are_clean():
    r = run(BIN / 'nbdev_clean')
    assert r.returncode == 0, r.stderr
    d = run('git', 'status', '--porcelain', '--', 'nbs')
    assert d.stdout == '', f"nbdev_clean changed notebooks; run it and commit:\n{d.stdout}"

def test_parameters_tag_survives_clean():
    import json
    nb = json.loads((REPO / 'nbs' / 'report_accuracy.ipynb').read_text())
    assert any('parameters' in c['metadata'].get('tags', []) for c in nb['cells'])

def test_every_notebook_runs():
    r = run(BIN / 'nbdev_test', '--n_workers', '1', '--do_print', cwd=REPO / 'nbs')
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
