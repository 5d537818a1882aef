"""The installed `tabsynth` command, run as a user runs it: a separate process, its exit status, its files."""
import json, os, subprocess, sys
import pandas as pd
import pytest
from pathlib import Path

BIN = Path(sys.executable).parent


def run(*args, env=None):
    return subprocess.run([str(BIN/'tabsynth'), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_the_package_imports_as_documented():
    r = subprocess.run([sys.executable, '-c', 'from tabsynth.core import Schema; from tabsynth.datasets import load, split'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_demo_writes_its_report(tmp_path):
    r = run('demo', '--out', str(tmp_path/'demo'), '--seed', '3')
    assert r.returncode == 0, r.stderr
    assert "table 'diabetes': 11 columns; target 'progression' (regression)" in r.stdout
    report = json.loads((tmp_path/'demo/report.json').read_text())
    assert report['split'] == {'sizes': [0.6, 0.2, 0.2], 'seed': 3, 'rows': {'train': 265, 'valid': 89, 'test': 88}, 'class_shares': None}
    assert (tmp_path/'demo/overview.png').stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path/'demo').iterdir()) == ['date.csv', 'evaluation', 'hybrid.csv', 'overview.png', 'report.json', 'schema.json', 'scm']
    assert sorted(p.name for p in (tmp_path/'demo/evaluation').iterdir()) == ['associations.png', 'detection_roc.png', 'marginals.png']
    assert report['evaluation']['rows'] == {'real': 354, 'synthetic': 354, 'holdout': 88}
    assert 'made' in r.stdout and 'everything above, as JSON' in r.stdout and str(tmp_path/'demo/report.json') in r.stdout
    sc = report['scm']
    assert sc['rows'] == {'main': 2000, 'aux': 500} and 'SCM (two tables from nothing)' in r.stdout
    assert {(g['method'], g['dim']) for g in sc['aux_gain']} == {('embdi', 16), ('embdi', 64), ('joined features', 0)}
    main_t, aux_t = pd.read_csv(tmp_path/'demo/scm/main.csv'), pd.read_csv(tmp_path/'demo/scm/aux.csv')
    assert main_t.aux_id.isin(aux_t.aux_id).all() and 'REFERENCES aux(aux_id)' in (tmp_path/'demo/scm/schema.sql').read_text()
    h = report['hybrid']
    assert h['rows'] == len(pd.read_csv(tmp_path/'demo/hybrid.csv')) == 354 and h['report']['hard_rate'] == 0 and h['balanced'] == 'sex'
    assert max(h['shares'].values()) - min(h['shares'].values()) < 0.1 and "H-TDBU (template 'balanced sex'" in r.stdout
    d = report['date']   # the demo's promise: on its default table, DATE's rows lower the decision tree's test error
    assert d['measure'] == 'MSE' and d['rows'] == len(pd.read_csv(tmp_path/'demo/date.csv')) > 0 and d['with DATE'] < d['real']
    assert 'DATE (offline proposer' in r.stdout and 'passed a one-sided paired test' in r.stdout and d['report']['selection'] == 'mds'

def test_demo_on_a_classification_table_balances_its_classes(tmp_path):
    r = run('demo', '--dataset', 'penguins', '--out', str(tmp_path), '--seed', '3')
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path/'report.json').read_text())
    assert set(report['split']['class_shares']) == {'train', 'valid', 'test'} and report['split']['rows'] == {'train': 206, 'valid': 69, 'test': 69}
    h, d = report['hybrid'], report['date']
    assert h['balanced'] == 'species' and max(h['shares'].values()) - min(h['shares'].values()) < 0.1 and 'TSTR AUROC' in r.stdout
    assert d['measure'] == 'error %' and 0 <= d['with DATE'] <= 100
    if d['rows'] == 0: assert 'beyond chance' in r.stdout   # a table where no gain is beyond chance: the demo says so


def test_demo_on_a_table_date_cannot_use_still_reports(tmp_path):
    from tabsynth.datasets import list_datasets
    if not list_datasets().loc['phrasebank', 'available']: pytest.skip('phrasebank (free text only) comes from the benchmark data folder, which is missing here')
    r = run('demo', '--dataset', 'phrasebank', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path/'report.json').read_text())
    assert 'no feature column can be split on' in report['date']['skipped']
    assert 'hybrid' in report


def test_bench_date_on_a_bundled_table(tmp_path):
    r = run('bench', 'date', '--tables', 'breast-cancer', '--baselines', 'interpolation', '--seeds', '42', '1', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    f = pd.read_csv(tmp_path/'date.csv')
    assert {'real', 'DATE', 'DATE, no refinement', 'DATE, greedy selection', 'interpolation', 'tree, leaf size tuned', 'gradient boosting, real rows'} == set(f.method)
    assert sorted(f.seed.unique()) == [1, 42] and f.error.notna().all()
    assert '## Targets' in (tmp_path/'summary.md').read_text() and '## Targets' in r.stdout and 'Split seeds: 42, 1.' in r.stdout


def test_bench_date_on_a_file_of_ones_own(tmp_path):
    # Before: the DATE benchmark took only bundled names. A file of one's own, here one that repeats most of its rows
    # (which made the interpolation baseline raise CopyError and stopped the benchmark), with its target.
    from test_privacy import duplicate_heavy
    duplicate_heavy().to_csv(tmp_path/'mine.csv', index=False)
    r = run('bench', 'date', '--table', str(tmp_path/'mine.csv'), '--target', 'y', '--baselines', 'interpolation', 'independent',
            '--seeds', '3', '4', '--jobs', '2', '--out', str(tmp_path/'out'))
    assert r.returncode == 0, r.stderr
    f = pd.read_csv(tmp_path/'out'/'date.csv')
    assert set(f.table) == {'mine'} and sorted(f.seed.unique()) == [3, 4] and f.error.notna().all(), f
    assert '## DATE paired with each method' in r.stdout
    bad = run('bench', 'date', '--table', str(tmp_path/'mine.csv'), '--out', str(tmp_path/'x'))
    assert bad.returncode == 2 and '--table needs --target' in bad.stderr and not (tmp_path/'x').exists()


def test_bench_hybrid_fast(tmp_path):
    from tabsynth.datasets import list_datasets
    if not list_datasets().loc[['bank-additional', 'phrasebank'], 'available'].all(): pytest.skip('the H-TDBU tables come from the benchmark data folder, which is missing here')
    r = run('bench', 'hybrid', '--generators', 'independent', 'random_forest', '--seeds', '1', '--rows', '1000', '--max-train-rows', '2000', '--out', str(tmp_path))
    assert r.returncode == 0, r.stderr
    f = pd.read_csv(tmp_path/'hybrid.csv')
    assert set(zip(f.template, f.generator)) == {('real (TRTR)', 'real'), *((t, g) for t in ('manual', 'strict') for g in ('independent', 'random_forest'))}
    assert (f.dropna(subset=['violation rate'])['violation rate'] == 0).all() and '## Targets' in r.stdout


def test_user_errors_are_one_line_with_status_2(tmp_path):
    r = run('demo', '--dataset', 'magic', '--out', str(tmp_path), env={'TABSYNTH_DATA_DIR': str(tmp_path/'nowhere')})
    assert r.returncode == 2
    assert r.stderr.startswith("tabsynth demo: dataset 'magic' is read from the benchmark data folder")
    assert 'TABSYNTH_DATA_DIR' in r.stderr and 'Traceback' not in r.stderr
    r = run('demo', '--dataset', 'pinguins')
    assert r.returncode == 2 and "did you mean 'penguins'" in r.stderr


def test_help_and_datasets():
    r = run('--help')
    assert r.returncode == 0 and all(c in r.stdout for c in ('demo', 'datasets', 'docs', 'date', 'hybrid', 'evaluate', 'scm', 'bench'))
    for cmd in ('date', 'hybrid', 'evaluate'):
        r = run(cmd, '--help')
        assert r.returncode == 0 and 'example: tabsynth ' + cmd in r.stdout and '--target' in r.stdout
    r = run('datasets')
    assert r.returncode == 0 and 'penguins' in r.stdout and 'available' in r.stdout


def test_date_hybrid_evaluate_on_a_csv_of_ones_own(tmp_path):
    "The three commands as a user runs them on a file: rows, report, schema and figures; then evaluate on what hybrid wrote."
    from tabsynth.datasets import load
    load('wine').frame.to_csv(tmp_path/'wine.csv', sep=';', index=False)
    load('diabetes').frame.to_csv(tmp_path/'diabetes.csv', sep=';', index=False)   # wine's 36 validation rows leave no gain beyond chance: DATE adds none there
    r = run('date', str(tmp_path/'diabetes.csv'), '--target', 'progression', '--out', str(tmp_path/'date'), '--format', 'parquet')
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path/'date/report.json').read_text())
    assert rep['command'] == 'date' and rep['llm'] is None and len(pd.read_parquet(tmp_path/'date/synthetic.parquet')) == rep['date']['rows'] > 0
    assert rep['augmentation']['with DATE'] < rep['augmentation']['real'] and 'decision-tree test MSE' in r.stdout
    (tmp_path/'t.json').write_text(json.dumps({'name': 'balanced', 'columns': {'cultivar': {'values': ['class_0', 'class_1', 'class_2']}}}))
    r = run('hybrid', str(tmp_path/'wine.csv'), '--target', 'cultivar', '--template', str(tmp_path/'t.json'), '--generator', 'gaussian_copula',
            '--rows', '300', '--out', str(tmp_path/'hybrid'))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path/'hybrid').iterdir()) == ['associations.png', 'detection_roc.png', 'marginals.png', 'report.json',
                                                                     'schema.json', 'split.csv', 'synthetic.csv', 'template.json']
    split = pd.read_csv(tmp_path/'hybrid/split.csv')
    assert len(split) == 178 and split.part.value_counts().to_dict() == {'training': 142, 'holdout': 36}
    r = run('evaluate', str(tmp_path/'wine.csv'), str(tmp_path/'hybrid/synthetic.csv'), '--target', 'cultivar', '--out', str(tmp_path/'ev'))
    assert r.returncode == 0, r.stderr
    ev = json.loads((tmp_path/'ev/report.json').read_text())
    assert ev['evaluation']['rows'] == {'real': 178, 'synthetic': 300, 'holdout': None}
    r = run('hybrid', str(tmp_path/'wine.csv'), '--target', 'cultivar', '--template', str(tmp_path/'t.json'), '--out', str(tmp_path/'hybrid'))
    assert r.returncode == 2 and 'pass --overwrite' in r.stderr
    r = run('hybrid', str(tmp_path/'wine.csv'), '--target', 'cultivar', '--template', str(tmp_path/'t.json'), '--out', str(tmp_path/'hybrid'), '--overwrite', '--rows', '50')
    assert r.returncode == 0 and len(pd.read_csv(tmp_path/'hybrid/synthetic.csv')) == 50
