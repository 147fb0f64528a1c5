"""The study command: end to end on smoke, resumable after a kill, locked, and strict about its input."""
import json, os, re, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from conftest import qstudy, BIN
from qstudy import store
from qstudy.models import MODEL_NAMES
from qstudy.config import Run
from qstudy.study import SECTIONS, STAGES, DEFAULT_SECTIONS, page_problems
from qstudy.findings import CLAIMS

@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    "The README's main job, in a temporary folder: every model, every section."
    d = tmp_path_factory.mktemp('study')
    t0 = time.time()
    r = qstudy('study', '--profile', 'smoke', '--dataset', 'digits', '--run-dir', d / 'runs', '--quiet', cwd=d)
    print(f"smoke study: {time.time() - t0:.0f} s")
    assert r.returncode == 0, r.stderr[-3000:]
    return d, r

def records(run_dir):
    return {r['name']: r for r in store.list_artifacts(run_dir, 'models')}

def test_smoke_study_produces_every_report(smoke):
    d, r = smoke
    out = d / 'reports' / 'smoke' / 'digits'
    for s in DEFAULT_SECTIONS:
        assert (out / f'{s}.ipynb').exists() and (out / f'{s}.html').stat().st_size > 10_000
        assert json.loads((out / f'{s}.json').read_text())['headline']
        assert '<img' in (out / f'{s}.html').read_text(), f'{s}: no figure on the page'   # drawn and shown inline
    assert list((out / 'figures').glob('*.png'))
    idx = (d / 'reports' / 'smoke' / 'index.html').read_text()
    assert "href='digits/accuracy.html'" in idx
    assert not list(out.glob('.*'))  # no temporary report left behind
    st = json.loads((out / 'stages.json').read_text())
    # every stage's wall time; the opt-in regime section is not part of the main job
    assert set(st['seconds']) == {'train', *(x for x in STAGES if x != 'regime'), *(f'report {s}' for s in DEFAULT_SECTIONS)}
    assert 'regime' not in DEFAULT_SECTIONS and not (out / 'regime.html').exists()
    assert st['run']['run_dir'] == str((d / 'runs').resolve())   # findings read the store this names
    # every section drawn from the same models (a partial rerun on new ones would leave the others marked as older)
    assert set(st['models_of']) == set(DEFAULT_SECTIONS) and len(set(st['models_of'].values())) == 1
    # and printed at the top of the reports: a page the times of the stages it reads (done, so final, when it is written)
    times = {s: (out / f'{s}.html').read_text().split('stages this page reads')[1].split('</li>')[0] for s in ('accuracy', 'robustness')}
    assert 'train ' in times['accuracy'] and 'attacks ' not in times['accuracy'], times
    assert re.search('train .*attacks .*seeds ', times['robustness']) and 'transfer' not in times['robustness'], times
    # a report begins as soon as the stages it reads are done: the accuracy and robustness pages were written before the
    # last stage saved its results (a run cut off keeps them). saved_at counts whole seconds: one of margin
    last = max(time.mktime(time.strptime(r['saved_at'], '%Y-%m-%dT%H:%M:%S')) for k in ('adversarial', 'results')
               for r in store.list_artifacts(d / 'runs', k))
    assert all((out / f'{s}.html').stat().st_mtime < last - 1 for s in ('accuracy', 'robustness')), last
    findings = (d / 'reports' / 'smoke' / 'findings.md').read_text()
    rows = [l for l in findings.splitlines() if l.startswith('| ') and not l.startswith('| claim')]
    assert len(rows) == len(CLAIMS) and all('**digits: ' in r for r in rows)
    assert all(any(f'**digits: {v}**' in r for v in ('holds', 'does not hold', 'cannot tell')) for r in rows)
    assert not re.search(r'\bnan\b', findings, re.I), 'a missing number shows as nan in the findings'
    assert "href='findings.html'" in idx and (d / 'reports' / 'smoke' / 'findings.html').stat().st_size > 2000
    # the index opens with the question and each dataset's answer, written from the verdicts, before any table
    assert idx.index('Does low-bitwidth quantization change adversarial robustness?') < idx.index('<h2>digits</h2>') < idx.index('<table')
    assert 'claims judged' in idx and 'time per stage' not in idx.split('<footer>')[0] and 'network at width' in idx
    answer = idx.split("<ul class='answer'>")[1].split('</ul>')[0]   # one sentence a line, the models' last
    assert answer.count('<li>') >= 3 and 'claims judged' in answer and 'network at width' in answer.split('<li>')[-1]
    fh = (d / 'reports' / 'smoke' / 'findings.html').read_text()
    assert page_problems(idx, figures=False) == [] and page_problems(fh, figures=False) == []
    assert '&lt;br&gt;' not in fh and '<br>' not in fh and fh.count("<span class='v'") >= len(CLAIMS)
    for s in DEFAULT_SECTIONS:   # a page for readers: a real title, links back, no code, no parameters cell, a small stylesheet
        page = (out / f'{s}.html').read_text()
        assert f'<title>qstudy — {SECTIONS[s]["title"]}</title>'.replace("'", '&#x27;') in page, s
        assert "href='../index.html'" in page and 'jp-InputArea' not in page and 'input_area' not in page
        styles = re.findall(r'<style.*?</style>', page, re.S)   # ours and pandas' per-table rules: the page is its content
        assert 'overrides = ' not in page and sum(map(len, styles)) < 20_000, (s, sum(map(len, styles)))
        text = visible_text(page)
        assert not re.search(r'\bnan\b', text, re.I), (s, 'a missing number shows as nan', text[max(0, re.search(r'nan', text, re.I).start() - 80):][:160])
        assert 'import ' not in text and 'def ' not in text, (s, 'code shows on the page')
        nb = json.loads((out / f'{s}.ipynb').read_text())   # every figure the notebook drew reaches the page, with its caption
        outs = [o.get('data', {}) for c in nb['cells'] for o in c.get('outputs', [])]
        drawn = sum('image/png' in o or '<figure>' in ''.join(o.get('text/html', '')) for o in outs)
        assert drawn >= 1 and page.count('<img') == drawn == page.count('<figcaption>'), (s, drawn, page.count('<img'))
        # read as a reader would: no literal markup, Python reprs, index columns, booleans, nan, images without alt text, code
        assert page_problems(page) == [], (s, page_problems(page))
        assert re.search('class=.answer.', page).start() < page.index('<table'), (s, 'the answer comes before the tables')

def visible_text(page):
    "What a reader sees of an HTML page: its text without tags, stylesheets or scripts."
    from html.parser import HTMLParser
    class Text(HTMLParser):
        def __init__(self): super().__init__(); self.out, self.skip = [], 0
        def handle_starttag(self, tag, attrs): self.skip += tag in ('style', 'script')
        def handle_endtag(self, tag): self.skip -= tag in ('style', 'script')
        def handle_data(self, data):
            if not self.skip: self.out.append(data)
    t = Text(); t.feed(page)
    return ' '.join(t.out)

@pytest.fixture(scope='module')
def regime(smoke):
    "The opt-in regime section on the smoke study's run store: it trains its own models only."
    d, _ = smoke
    before = artifacts(d / 'runs')['models']
    wall = json.loads((d / 'reports/smoke/digits/stages.json').read_text())['wall_seconds']
    t0 = time.time()
    r = qstudy('study', '--profile', 'smoke', '--dataset', 'digits', '--sections', 'regime', '--run-dir', d / 'runs', '--quiet', cwd=d)
    print(f"smoke regime section: {time.time() - t0:.0f} s")
    assert r.returncode == 0, r.stderr[-3000:]
    return d, before, wall

def test_regime_section(regime):
    from qstudy.regime import regime_variants
    d, before, wall = regime
    out = d / 'reports' / 'smoke' / 'digits'
    page = (out / 'regime.html').read_text()
    assert page.count('<img') >= 3 and "href='../index.html'" in page and 'jp-InputArea' not in page
    assert not re.search(r'\bnan\b', page, re.I) and page_problems(page) == [], page_problems(page)
    # a recipe item that does not act on a model (tf_sign on float) shares the first recipe's: the page says its row repeats it
    shared = [v for v in regime_variants('smoke') if v['overrides']['recipe'] != v['recipe']]
    assert shared and all(f"{v['model']} at width {v['width']:g} is the model of recipe {v['overrides']['recipe']}" in visible_text(page)
                          for v in shared), visible_text(page)[:3000]
    after = artifacts(d / 'runs')['models']
    assert all(after[h] == t for h, t in before.items())   # the nine models untouched
    from qstudy.training import model_record
    mine = {model_record(Run('smoke', 'digits', run_dir=d / 'runs'), v['model'], **v['overrides'])['hash'] for v in regime_variants('smoke')}
    # its own budget: every variant trained once; a setting equal to the study's would be shared
    assert set(after) - set(before) == mine - set(before) and mine <= set(after)
    st = json.loads((out / 'stages.json').read_text())
    assert 'regime' in st['seconds'] and st['wall_seconds'] == wall   # a partial run keeps the whole study's wall time
    assert "href='digits/regime.html'" in (d / 'reports/smoke/index.html').read_text()
    row = next(l for l in (d / 'reports/smoke/findings.md').read_text().splitlines() if "raises w1a1's FGSM and BIM" in l)
    assert 'not run' not in row and '**digits: ' in row
    # status follows the section: its models each done, its page current in this store; another store has neither
    st = qstudy('status', '--profile', 'smoke', '--dataset', 'digits', '--sections', 'regime', '--run-dir', d / 'runs', cwd=d).stdout
    lines = [l for l in st.splitlines() if l.strip().startswith('regime ')]
    assert lines and all(': done ' in l for l in lines) and 'report regime     done\n' in st, st
    other = qstudy('status', '--profile', 'smoke', '--dataset', 'digits', '--sections', 'regime', '--run-dir', d / 'other', cwd=d).stdout
    assert all(l.endswith(': missing') for l in other.splitlines() if l.strip().startswith('regime ')) and 'drawn from other models than this run store holds' in other, other
    from qstudy.regime import regime_attacks
    k = len(regime_variants('smoke')) * len(regime_attacks(Run('smoke', 'digits')))   # every variant's attacks
    assert f"  stage regime: {k} of {k} adversarial sets stored\n" in st, st
    assert f"  stage regime: 0 of {k} adversarial sets stored; {k} wait for their model" in other, other

def test_ship_regime_models(regime, tmp_path):
    "qstudy ship --regime writes every variant of the section; a fresh store then loads each instead of training it."
    from qstudy.regime import regime_variants, variant_run
    from qstudy.training import train_model, model_record
    d, _, _ = regime
    dest = tmp_path / 'shipped'
    # --models picks the names (a binarized model ships in bits; a float one in full)
    r = qstudy('ship', '--profile', 'smoke', '--dataset', 'digits', '--regime', '--models', 'w1a1', '--run-dir', d / 'runs', '--dest', dest, cwd=d)
    assert r.returncode == 0 and {p.name.split('-')[0] for p in dest.rglob('*.qsw')} == {'w1a1'}, r.stderr[-2000:]
    r = qstudy('ship', '--profile', 'smoke', '--dataset', 'digits', '--regime', '--run-dir', d / 'runs', '--dest', dest, cwd=d)
    assert r.returncode == 0, r.stderr[-2000:]
    vs = regime_variants('smoke')
    # two variants can be one model (a setting equal to another's): one file each distinct model
    hashes = {model_record(variant_run(Run('smoke', 'digits', run_dir=d / 'runs'), v), v['model'])['hash'] for v in vs}
    assert len(list(dest.rglob('*.qsw'))) == len(hashes) and len(hashes) >= 8
    v = next(v for v in vs if v['recipe'] == 'qstudy' and v['model'] == 'w1a1')
    _, rec = train_model(variant_run(Run('smoke', 'digits', run_dir=tmp_path / 'fresh'), v), 'w1a1', progress=False, shipped=dest)
    assert rec['source'] == 'shipped' and rec['hash'] in hashes

def test_findings_command(smoke, tmp_path):
    d, _ = smoke
    f = d / 'reports' / 'smoke' / 'findings.md'
    before = f.read_text(); f.unlink()
    r = qstudy('findings', '--profile', 'smoke', cwd=d)
    assert r.returncode == 0 and f.read_text() == before  # the same numbers give the same page
    r = qstudy('findings', '--profile', 'smoke', cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'no study reports' in r.stderr, r.stderr
    # another machine: the reports without their run store give the same verdicts from the numbers kept beside them
    shutil.copytree(d / 'reports', tmp_path / 'reports')
    st = tmp_path / 'reports/smoke/digits/stages.json'
    s = json.loads(st.read_text()); s['run']['run_dir'] = str(tmp_path / 'gone'); st.write_text(json.dumps(s))
    r = qstudy('findings', '--profile', 'smoke', cwd=tmp_path)
    page = (tmp_path / 'reports/smoke/findings.md').read_text()
    table = lambda p: [l for l in p.splitlines() if l.startswith('| ')]
    assert r.returncode == 0 and table(page) == table(before) and 'judged from the kept numbers (the run store here lacks them, or is not here, under the current settings): accuracy' in page, r.stderr
    shutil.rmtree(tmp_path / 'reports/smoke/digits/numbers')
    r = qstudy('findings', '--profile', 'smoke', cwd=tmp_path)   # nothing kept, no store: listed, not judged
    assert r.returncode == 2 and 'no study reports' in r.stderr, r.stderr

def test_smoke_accuracies(smoke):
    from qstudy.training import model_record   # the study's own models (the regime section trains others of the same names)
    recs = {m: model_record(Run('smoke', 'digits', run_dir=smoke[0] / 'runs'), m) for m in MODEL_NAMES}
    assert sorted(recs) == sorted(MODEL_NAMES)
    f = recs['float']['accuracy']
    assert f > 0.9
    # issue bar: every quantized model but the fully binarized one keeps 90 % of the float accuracy
    for m in MODEL_NAMES[2:]: assert recs[m]['accuracy'] >= 0.9 * f, (m, recs[m]['accuracy'], f)

def artifacts(run_dir):
    "{kind: {hash: saved_at}} of everything in the store."
    return {k: {r['hash']: r['saved_at'] for r in store.list_artifacts(run_dir, k)} for k in ('models', 'adversarial', 'results')}

def test_rerun_loads_everything(smoke):
    d, _ = smoke
    before = artifacts(d / 'runs')
    assert all(before.values()) and len(before['results']) >= 3 + 9   # transfer, gradients, ensemble, a diagnosis per model
    # deleting a section's report and rerunning it recomputes nothing: every stage it needs loads from the store
    out = d / 'reports' / 'smoke' / 'digits'
    for f in out.glob('masking.*'): f.unlink()
    stages_before = json.loads((out / 'stages.json').read_text())
    t0 = time.time()
    r = qstudy('study', '--profile', 'smoke', '--run-dir', d / 'runs', '--quiet', '--sections', 'masking', cwd=d)
    print(f"masking section rerun from the store: {time.time() - t0:.1f} s")
    assert r.returncode == 0, r.stderr[-2000:]
    assert artifacts(d / 'runs') == before and (out / 'masking.html').exists()
    st = json.loads((out / 'stages.json').read_text())   # stages that only loaded keep the times of the run that computed them
    assert all(st['seconds'][k] == v for k, v in stages_before['seconds'].items() if not k.startswith('report'))
    assert st['wall_seconds'] == stages_before['wall_seconds']
    assert st['models_of'] == stages_before['models_of']   # the same models, though this section trains fewer replicates
    st = qstudy('status', '--profile', 'smoke', '--run-dir', d / 'runs', cwd=d)
    # the nine, the baseline float2 and the seeds stage's three other replicates (float@1 is float2)
    assert st.stdout.count(' done ') == 9 + 1 + 3 and 'missing' not in st.stdout

def test_status_counts_sets_and_kept_chunks(smoke, tmp_path):
    "qstudy status says how many adversarial sets each attack stage has stored, the chunks a cut-off attack kept, and which wait for their model."
    from qstudy.study import attack_sets
    d, _ = smoke
    runs = tmp_path / 'runs'; shutil.copytree(d / 'runs', runs)
    status = lambda: qstudy('status', '--profile', 'smoke', '--run-dir', runs, '--reports-dir', d / 'reports', cwd=d).stdout
    planned = {st: len(ms) * len(at) * len(off) for st in ('attacks', 'strong', 'seeds') for ms, at, off in [attack_sets(st, MODEL_NAMES)]}
    for st, k in planned.items(): assert f"stage {st}: {k} of {k} adversarial sets stored\n" in status(), status()
    # float's FGSM set at seed 0 cut off after its first chunk: its record gone, one chunk kept
    from qstudy.metrics import adversarial_config
    from qstudy.training import model_record
    run = Run('smoke', 'digits', 0, runs)
    cfg, label, *_ = adversarial_config(run, model_record(run, 'float'), 'fgsm')
    fgsm = store.artifact_dir(runs, 'adversarial', cfg, label)
    (fgsm / 'record.json').unlink(); (fgsm / 'chunks').mkdir()
    import torch
    torch.save(dict(result={}, seconds=90.0), fgsm / 'chunks' / 'chunk-0.pt')   # as attack_chunks keeps one: its result and its seconds
    # w2a2 not in the store (a shipped model not loaded yet): its five paper attacks wait
    next((runs / 'models').glob('w2a2-*/record.json')).unlink()
    got = status()
    k = planned['attacks']
    m = re.search(rf"stage attacks: {k - 6} of {k} adversarial sets stored; fgsm on float: 1 of (\d+) chunks kept, 90 s each, about (.+?) to go; "
                  "5 wait for their model", got)
    from qstudy.study import duration
    assert m and m[2] == duration((int(m[1]) - 1) * 90), got   # the rest of the set at the kept chunk's pace
    # float's BIM set gone whole (no chunk kept): not begun, its points at the pace of the BIM sets stored
    cfg, label, n, *_ = adversarial_config(run, model_record(run, 'float'), 'bim')
    bim = store.artifact_dir(runs, 'adversarial', cfg, label)
    shutil.rmtree(bim)
    got = status()
    assert re.search(rf"stage attacks: {k - 7} of {k} adversarial sets stored; fgsm on float: 1 of \d+ chunks kept, 90 s each, about .+? to go; "
                     rf"1 not begun \(bim {min(n, model_record(run, 'float')['n_correct'])} points\), about .+? at the pace of its attack's sets "
                     "so far; 5 wait for their model", got), got
    assert 'report robustness done\n' in got   # the same models as the accuracy section's
    # a page not written yet names the stages the study writes it after
    reports = tmp_path / 'reports'; shutil.copytree(d / 'reports', reports); (reports / 'smoke/digits/robustness.html').unlink()
    got = qstudy('status', '--profile', 'smoke', '--run-dir', runs, '--reports-dir', reports, cwd=d).stdout
    assert "report robustness missing (the study writes it once the stages attacks and seeds are done)\n" in got, got
    # a page drawn from other models than the accuracy section's says when the study writes it again
    st = json.loads((reports / 'smoke/digits/stages.json').read_text())
    st.setdefault('models_of', {})['transfer'] = 'earlier'; (reports / 'smoke/digits/stages.json').write_text(json.dumps(st))
    got = qstudy('status', '--profile', 'smoke', '--run-dir', runs, '--reports-dir', reports, cwd=d).stdout
    assert ("report transfer   done, but drawn from earlier models than the accuracy section's; "
            "the study writes it once the stages attacks and transfer are done\n") in got, got

@pytest.mark.slow
def test_killed_study_resumes_without_redoing(tmp_path):
    runs = tmp_path / 'runs'
    args = [BIN / 'qstudy', 'study', '--profile', 'smoke', '--run-dir', runs, '--quiet', '--models', 'float', 'w1a1', 'w2a2',
            '--sections', 'accuracy']
    p = subprocess.Popen(list(map(str, args)), cwd=tmp_path, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while len(records(runs)) < 1 and time.time() - t0 < 240: time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    done = records(runs)
    assert 1 <= len(done) < 3, 'kill came too late to test anything'
    for rec in (runs / 'models').glob('*/record.json'):  # what is there is whole
        json.loads(rec.read_text()); torch.load(rec.parent / 'tensors.pt', weights_only=False)
    r = subprocess.run(list(map(str, args)), cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    after = records(runs)
    assert sorted(after) == ['float', 'w1a1', 'w2a2']
    redone = [m for m in done if after[m]['saved_at'] != done[m]['saved_at']]
    assert redone == []  # finished models were loaded, not trained again
    # the resumed train stage's time counts what the models it found took to make, not only the rest: at least the
    # compute seconds all three records carry (each measured inside one run's stage)
    st = json.loads((tmp_path / 'reports/smoke/digits/stages.json').read_text())
    assert st['seconds']['train'] >= sum(r['compute_seconds'] for r in after.values()) - 0.1 and st['at_least'] == []  # 0.1: rounding

def adversarial_sets(run_dir):
    "{config hash: (record, tensors)} of every stored adversarial set."
    return {r['hash']: store.load_artifact(run_dir, 'adversarial', r['config'], f"{r['model_name']}-{r['attack']}")
            for r in store.list_artifacts(run_dir, 'adversarial')}

@pytest.mark.slow
def test_ddp_attack_stage_matches_one_process(tmp_path):
    "Training and the attack stage under Lightning's DDP (two processes, gloo) give the examples one process gives."
    # one thread per process in both runs (Lightning sets it for its ranks): every sum runs in one order, so the
    # examples are equal bit for bit. A batch of 16 makes 1-5 chunks per attack: both ranks work, and where there is
    # one chunk, one rank idles
    env = dict(OMP_NUM_THREADS='1')
    models, ddp, one = ['float', 'w1a1'], tmp_path / 'ddp', tmp_path / 'one'
    r = qstudy('study', '--profile', 'smoke', '--dataset', 'digits', '--models', *models, '--sections', 'robustness',
               '--accelerator', 'cpu', '--devices', '2', '--strategy', 'ddp', '--attack-batch', '16',
               '--run-dir', ddp / 'runs', '--reports-dir', ddp / 'reports', '--quiet', cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'GLOBAL_RANK: 1' in r.stderr  # a second process did run
    assert (ddp / 'reports/smoke/digits/robustness.html').exists()
    shutil.copytree(ddp / 'runs' / 'models', one / 'runs' / 'models')  # the same trained models, attacked in one process
    script = ("import sys; from qstudy.config import Run, PAPER_ATTACKS; from qstudy.study import attack_stage; "
              f"run = Run('smoke', 'digits', 0, sys.argv[1], attack_batch=16, quiet=True); run.use(); attack_stage(run, {models!r}, list(PAPER_ATTACKS))")
    p = subprocess.run([sys.executable, '-c', script, str(one / 'runs')], env={**os.environ, **env}, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    a, b = adversarial_sets(ddp / 'runs'), adversarial_sets(one / 'runs')
    # the seeds stage (rank 0 alone) adds float's and w1a1's replicates: 2 models x 2 seeds x 3 attacks beside the 10
    from qstudy.config import REPLICATES
    extra = len(REPLICATES['seeds']) * len(REPLICATES['attacks']) * len(models)
    assert set(b) <= set(a) and len(b) == 10 and len(a) == 10 + extra
    a = {h: a[h] for h in b}
    assert {rec['config']['batch_size'] for rec, _ in a.values()} == {16}
    for h in a:
        (ra, ta), (rb, tb) = a[h], b[h]
        for k in ('idx', 'x_adv', 'pred_adv', 'step'): assert torch.equal(ta[k], tb[k]), (ra['model_name'], ra['attack'], k)
        assert (ra['acc'], ra['n'], ra['evaluations_per_point']) == (rb['acc'], rb['n'], rb['evaluations_per_point'])

def test_second_study_on_same_run_dir_is_refused(tmp_path):
    with store.run_lock(tmp_path / 'runs'):
        r = qstudy('study', '--profile', 'smoke', '--run-dir', tmp_path / 'runs', '--quiet', cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'is in use' in r.stderr
    assert not (tmp_path / 'reports').exists()

@pytest.mark.parametrize('args,message', [
    (['--profile', 'huge'], "unknown profile 'huge'"),
    (['--dataset', 'mnist'], "unknown dataset 'mnist'"),
    (['--sections', 'nope'], "unknown section 'nope'"),
    (['--models', 'w5a5'], "unknown model 'w5a5'"),
    (['--models', 'w2a8'], "unknown model 'w2a8'"),
    (['--models', 'float', 'w1a1'], "section 'ensemble' needs the models"),
    (['--seed', 'x'], "invalid int value: 'x'"),
    (['--attack-batch', '0'], "attack batch 0: allowed: a positive number of points"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, args, message):
    r = qstudy('study', '--run-dir', tmp_path / 'runs', *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count('\n') == 1 and message in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []

def test_unwritable_run_dir(tmp_path):
    f = tmp_path / 'file'; f.write_text('')
    r = qstudy('study', '--run-dir', f / 'runs', cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'not writable' in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['file']

def test_help_lists_commands():
    r = qstudy('--help')
    assert r.returncode == 0 and all(c in r.stdout for c in ('study', 'status', 'data', 'train', 'findings'))

COMPUTE = ('train_model', 'load_trained', 'build_model', 'attack', 'diagnose', 'zoo_estimates', 'loss_gradients',
           'model_gradients', 'transfer_matrix', 'ensemble_tables', 'adaptive_rows', 'adversarial_examples',
           'logit_stats', 'run_regime', 'regime_row')

@pytest.mark.parametrize('section', list(SECTIONS))
def test_report_computes_nothing(smoke, section, monkeypatch, request):
    "Every report renders from the store alone, with every model, attack and diagnostic function made to fail."
    import importlib
    from execnb.shell import CaptureShell
    from execnb.nbio import read_nb
    from qstudy.study import NBS
    d, _ = smoke
    if section == 'regime': request.getfixturevalue('regime')
    for m in ('training', 'models', 'attacks', 'metrics', 'transfer', 'gradients', 'diagnostics', 'ensemble', 'regime', 'findings', 'study'):
        importlib.import_module(f'qstudy.{m}')
    def boom(*a, **k): raise AssertionError('a report computed instead of reading the store')
    for name, mod in list(sys.modules.items()):
        if name.startswith('qstudy'):
            for f in COMPUTE:
                if hasattr(mod, f): monkeypatch.setattr(mod, f, boom)
    nb = read_nb(NBS / SECTIONS[section]['notebook'])
    cell = next(c for c in nb.cells if 'parameters' in c.metadata.get('tags', []))
    cell.source += f"\nrun_dir = {str(d / 'runs')!r}\nout_dir = None"
    sh = CaptureShell()
    sh.run_all(nb, exc_stop=True)
    # a figure drawn: a bare image, or one with its alt text and caption (show_figure)
    assert any(o.get('output_type') == 'display_data' and ('image/png' in o.get('data', {}) or '<figure>' in ''.join(o.get('data', {}).get('text/html', '')))
               for c in nb.cells for o in c.get('outputs', []))

def test_a_built_wheel_carries_the_report_notebooks(tmp_path):
    "pip install . (not editable) gets the report notebooks as package data: the study finds them beside the package."
    import subprocess, sys, zipfile
    from conftest import REPO, BIN
    build = tmp_path / 'src'
    shutil.copytree(REPO, build, ignore=shutil.ignore_patterns('.venv', 'runs', 'reports', '.git', '__pycache__', 'build', '*.egg-info'))
    r = subprocess.run([str(BIN / 'pip'), 'wheel', '--no-deps', '--no-build-isolation', '-q', '.', '-w', str(tmp_path / 'whl')],
                       cwd=build, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / 'whl').glob('*.whl'))
    names = zipfile.ZipFile(wheel).namelist()
    assert {f'qstudy/reports/{p.name}' for p in (REPO / 'nbs').glob('report_*.ipynb')} <= set(names)
    zipfile.ZipFile(wheel).extractall(tmp_path / 'site')
    # from the unpacked wheel alone (no checkout beside it), the report folder is the package's own
    code = "import qstudy.study as s; print(s.NBS); print(sorted(s.report_parameters('accuracy')))"
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, 'PYTHONPATH': str(tmp_path / 'site')})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines()[0] == str(tmp_path / 'site' / 'qstudy' / 'reports') and 'run_dir' in r.stdout

def test_the_index_says_what_the_models_are(tmp_path):
    "The answer's sentence on the models comes from what the study recorded (its training settings), never from today's profile."
    from qstudy.study import what_models
    d = tmp_path / 'svhn'; d.mkdir()
    assert what_models(d) == ''   # no study here
    (d / 'stages.json').write_text(json.dumps(dict(profile='cpu', dataset='svhn', seconds={})))
    assert 'an earlier version of the study' in what_models(d) and 'Float' not in what_models(d)   # nothing recorded: said, nothing guessed
    (d / 'stages.json').write_text(json.dumps(dict(run=dict(train=dict(width=0.125, recipe='authors-folded')))))
    (d / 'accuracy.json').write_text(json.dumps(dict(headline="Float reaches 0.90 [0.89, 0.91] n=2000. Against the paper's Table 2, "
                                                               "3 of 9 models are within 0.08; w1a1 falls further short.")))
    s = what_models(d)
    assert "width 0.125 (authors-folded recipe). Float reaches 0.90" in s and "Table 2, 3 of 9" in s and 'NOT the official SVHN split' in s

def test_the_index_marks_sections_not_judged(tmp_path):
    "A section whose claims findings could not judge (drawn from earlier models, or its numbers not kept) says so on the index."
    from qstudy.study import write_index
    d = tmp_path / 'cpu' / 'svhn'; d.mkdir(parents=True)
    (d / 'stages.json').write_text(json.dumps(dict(seconds={'regime': 1.0}, apart=['regime'],
                                                   models_of=dict(accuracy='new', gradients='new', robustness='old'))))
    for s in ('accuracy', 'gradients', 'robustness', 'regime'): (d / f'{s}.json').write_text(json.dumps(dict(headline=f'{s} says')))
    from qstudy.findings import _missing, record
    res = lambda out: dict(svhn=record(out))   # a dataset's result as findings keeps it
    moved = _missing(dict(stale=dict(robustness='models')), 'robustness')   # what findings writes for a section on earlier models
    vs = [dict(claim='c1', key='k1', section='regime', results=res(_missing({}, 'regime'))),
          dict(claim='c2', key='k2', section='gradients', results=res(('0.1 n=500', 'holds', 'a rule'))),
          dict(claim='c3', key='k3', section='robustness', results=res(moved))]
    (tmp_path / 'cpu' / 'verdicts.json').write_text(json.dumps(dict(verdicts=vs)))
    page = Path(write_index(tmp_path, 'cpu')).read_text()
    row = lambda s: next(l for l in page.split('<h2>The sections</h2>')[1].split('<tr>') if f"svhn/{s}.html" in l)
    assert "earlier version&#x27;s models" in row('robustness') and 'not judged' not in row('gradients').lower()
    assert 'Not judged by findings (section(s) regime not run). The page, as last rendered, said:</em> regime says' in row('regime')
    assert 'not judged' not in row('accuracy').lower()
    assert page_problems(page, figures=False) == [], page_problems(page, figures=False)

@pytest.mark.slow
def test_ship_writes_nothing_when_a_model_is_missing(tmp_path):
    "qstudy ship reads every record first (float brings its float2 baseline, trained at seed + 1): one missing, none shipped."
    from qstudy.training import train_model
    runs, dest = tmp_path / 'runs', tmp_path / 'shipped'
    train_model(Run('smoke', 'digits', run_dir=runs), 'float', progress=False)
    r = qstudy('ship', '--profile', 'smoke', '--dataset', 'digits', '--models', 'float', '--run-dir', str(runs), '--dest', str(dest), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'not in the run store' in r.stderr, r.stderr
    assert not dest.exists() or not any(dest.rglob('*')), list(dest.rglob('*'))   # float itself not shipped either
    train_model(Run('smoke', 'digits', seed=1, run_dir=runs), 'float', progress=False)
    r = qstudy('ship', '--profile', 'smoke', '--dataset', 'digits', '--models', 'float', '--run-dir', str(runs), '--dest', str(dest), cwd=tmp_path)
    assert r.returncode == 0 and len(list(dest.rglob('*.qsw'))) == 2, r.stderr
