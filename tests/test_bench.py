"""The baseline benchmark in its fast mode, run through the installed command as a user would."""
import os, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from tabsynth.datasets import data_dir, list_datasets


def test_bench_baselines_fast(tmp_path):
    needed = ['boston', 'bank-marketing', 'bank-additional', 'phrasebank']
    if not list_datasets().loc[needed, 'available'].all():
        pytest.skip(f"benchmark data folder {data_dir()[0]} lacks the benchmark tables")
    out = tmp_path/'bench'
    r = subprocess.run([str(Path(sys.executable).parent/'tabsynth'), 'bench', 'baselines', '--fast', '--out', str(out)],
                       capture_output=True, text=True, timeout=900, env={**os.environ, 'OMP_NUM_THREADS': '2'})
    assert r.returncode == 0, r.stderr[-3000:]
    assert '## DATE benchmark' in r.stdout and '## H-TDBU benchmark' in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ['date.csv', 'htdbu.csv', 'protocol.csv', 'summary.md']
    protocol = pd.read_csv(out/'protocol.csv')
    assert protocol.agrees.all(), protocol
    date = pd.read_csv(out/'date.csv')
    assert set(date.generator) == {'real', 'gaussian_copula', 'ctgan', 'interpolation'}
    assert date.error.notna().all() and (date.query("generator != 'real'").fit_s > 0).all()
    assert sorted(date.seed.unique()) == [1, 42] and date.groupby(['table', 'generator', 'volume']).size().eq(2).all()   # every run on both split seeds
    assert 'Split seeds: 42, 1.' in r.stdout and ' ± ' in r.stdout
    htdbu = pd.read_csv(out/'htdbu.csv')
    assert htdbu.generator.iloc[0] == 'TRTR (real)' and htdbu.accuracy.iloc[0] > 0.85
    gc = htdbu[htdbu.generator == 'gaussian_copula']
    assert len(gc) == 2 and gc[['xmodal', 'positive rate']].drop_duplicates().shape[0] == 2, "seeds must change the samples"


def test_a_real_error_of_zero_leaves_that_seed_out_of_the_relative_change():
    "A split the tree gets right (error 0) has no relative change; it divided by zero and warned before."
    import warnings
    import pandas as pd
    from tabsynth.evaluation import over_seeds
    df = pd.DataFrame({'table': ['t'] * 4, 'method': ['real', 'real', 'm', 'm'], 'seed': [1, 2, 1, 2], 'error': [0.0, 10.0, 1.0, 5.0]})
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        s = over_seeds(df).set_index('method')
    assert s.loc['m', 'change %'] == 50.0 and s.loc['m', 'below real'] == 1
