"""The DATE synthesizer end to end: its contract, the LLM path through a stub, and the edge cases the issue names."""
import json, warnings
import pandas as pd
import pytest
from tabsynth.datasets import load, split
from tabsynth.date import DATESynthesizer, CONTROLS
from tabsynth.llm import LLMClient, LLMProposer, StubServer


@pytest.fixture(scope='module')
def penguins():
    ds = load('penguins')
    f = ds.frame.dropna().reset_index(drop=True)
    return ds.schema, *split(f, 'species')


def test_fit_sample_and_the_report(penguins):
    schema, train, valid, test = penguins
    d = DATESynthesizer(rho=0.05, min_rows=20, random_state=0).fit(train, 'species', validation=valid, schema=schema)
    rows, rep = d.generate()
    assert rep.discovery['blocks'] == 1 and len(rep.models) == 1           # one block: one shared model, an ordinary run
    assert len(rows) == rep.rows and len(schema.coerce(rows).rejects) == 0
    json.dumps(rep.to_dict(), default=str)
    assert set(rep.seconds) == {'discovery', 'generation', 'selection', 'volume', 'total'}
    assert '<h4>DATE run</h4>' in rep._repr_html_()


def test_without_validation_rows_a_share_is_set_apart(penguins):
    schema, train, valid, test = penguins
    d = DATESynthesizer(validation_size=0.3, random_state=0).fit(train, 'species')
    assert abs(d.discovery_.n_rows - len(train) * 0.7) <= 2 and len(d.report_.models) >= 1


def test_an_llm_that_returns_nothing_usable(penguins):
    schema, train, valid, test = penguins
    with StubServer([{'text': '{"rows": [{"species": "Emperor"}]}'}]) as s:
        p = LLMProposer(LLMClient('stub', s.base_url), schema, rows_per_call=10)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            d = DATESynthesizer(proposer=p, rho=0.05, min_rows=20).fit(train, 'species', validation=valid, schema=schema)
    assert len(d.sample()) == 0 and any('produced no synthetic row' in str(x.message) for x in w)
    assert d.report_.proposer['rejects'].get('unknown_category', 0) + d.report_.proposer['rejects'].get('missing_column', 0) > 0
    assert d.report_.proposer['calls'] >= 1


def test_an_llm_that_writes_usable_rows(penguins):
    "The LLM path end to end: the stub's rows are parsed, grouped into arms by decision path, scored and selected."
    schema, train, valid, test = penguins
    rows = train.sample(12, random_state=1).copy()
    rows['bill_length_mm'] = rows['bill_length_mm'] + 0.05            # near real rows, but no copies
    text = json.dumps({'rows': json.loads(rows.to_json(orient='records'))})
    with StubServer([{'text': text}]) as s:
        p = LLMProposer(LLMClient('stub', s.base_url), schema, rows_per_call=12, max_rounds=1)
        d = DATESynthesizer(proposer=p, rho=0.05, min_rows=20, selection='all', iterations=1).fit(train, 'species', validation=valid, schema=schema)
    g = d.report_.generation
    assert g['rows written'] == 12 and sum(len(a.rows) for a in d.guided_.arms) == 12
    written = {round(v, 2) for v in rows['bill_length_mm']}
    assert set(d.guided_.rows()['bill_length_mm'].round(2)) <= written
    assert d.report_.proposer['rejects'] == {'repeats_a_row': d.report_.proposer['calls'] * 12 - 12}   # later calls repeat the first: counted, not kept
    # an LLM's rows are not free: the volume stage chooses how many of the rows it wrote to keep, and writes none of its own
    assert len(d.sample()) == d.report_.rows <= sum(len(a.rows) for a in d.guided_.arms)
    assert set(d.sample()['bill_length_mm'].round(2)) <= written and d.report_.pool['written'] == 0


def test_bad_input(penguins):
    schema, train, valid, test = penguins
    with pytest.raises(KeyError, match="did you mean 'species'"): DATESynthesizer().fit(train, 'specie')
    with pytest.raises(ValueError, match='budget=0'): DATESynthesizer(budget=0)
    with pytest.raises(ValueError, match='rho=-1'): DATESynthesizer(rho=-1)
    with pytest.raises(ValueError, match="alpha=2"): DATESynthesizer(alpha=2)
    with pytest.raises(TypeError, match='needs a pandas DataFrame'): DATESynthesizer().fit(train.to_numpy(), 'species')
    with pytest.raises(RuntimeError, match='not fitted yet'): DATESynthesizer().sample()
    d = DATESynthesizer(rho=0.05, min_rows=20).fit(train, 'species', validation=valid, schema=schema)
    with pytest.raises(ValueError, match='n=-1'): d.sample(-1)


def test_missing_values_that_the_tree_splits_on():
    "scikit-learn trees split present from missing values with threshold inf; DATE's path grouping must not turn that into a number."
    import warnings
    import numpy as np, pandas as pd
    from tabsynth.datasets import split
    from tabsynth.date import DATESynthesizer
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({'age': rng.integers(18, 80, n).astype(float), 'income': rng.normal(50000, 15000, n),
                       'plan': rng.choice(['basic', 'premium', 'pro'], n), 'tenure': rng.integers(1, 100, n)})
    df.loc[rng.random(n) < 0.15, 'income'] = np.nan
    df['spend'] = 20 + 0.3 * df.tenure + np.where(df.income.isna(), 25, df.income.fillna(0) / 5000) + rng.normal(0, 5, n)
    tr, va = split(df, 'spend', sizes=(0.75, 0.25), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d = DATESynthesizer(random_state=0).fit(tr, 'spend', validation=va)
    assert d.guided_.arms and all(np.isfinite(a.delta) for a in d.guided_.arms)


def test_the_benchmark_records_a_failing_generator_and_goes_on(tmp_path, monkeypatch):
    # Before: a generator that raised (CopyError on a table of few distinct rows) stopped date_benchmark and lost every result.
    # Copies are now allowed at the real rate, which on this table is every row, so the guard is made strict to fail as before.
    from tabsynth.date import date_benchmark
    import tabsynth.evaluation as ev
    strict = ev.IndependentSampler.__init__
    monkeypatch.setattr(ev.IndependentSampler, '__init__', lambda self, random_state=None, allow_copies='real': strict(self, random_state, False))
    coarse = pd.DataFrame({'a': ['x', 'y'] * 60, 'b': ['u', 'u', 'v', 'v'] * 30, 'y': ['p', 'q', 'q'] * 40})   # 12 distinct rows
    f = date_benchmark({'coarse': coarse, 'wine': 'wine'}, target='y', variants={}, baselines=('independent', 'interpolation'),
                       seeds=(42, 1), out=tmp_path, progress=False)
    bad = f[(f.table == 'coarse') & (f.method == 'independent')]
    assert len(bad) == 2 and bad.error.isna().all() and bad.note.str.startswith('failed: CopyError').all(), bad
    assert f[(f.table == 'wine')].error.notna().all() and set(f[f.table == 'wine'].method) == {'real', *CONTROLS, 'independent', 'interpolation'}
    text = (tmp_path/'summary.md').read_text()
    assert '## Failed runs' in text and 'coarse, 42, independent: failed: CopyError' in text and 'failed (2/2)' in text
