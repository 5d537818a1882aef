"""H-TDBU: the bottom-up contract, the hybrid synthesizer, the rule provider, the loop, and the bad input the issue names."""
import json
import numpy as np
import pandas as pd
import pytest
from tabsynth.core import Schema
from tabsynth.datasets import load
from tabsynth.rules import RuleError
from tabsynth.hybrid import (BOTTOM_UP, CTGAN, ConditionError, GaussianCopula, HybridSynthesizer, Independent, RandomForestChain,
                             SDVGenerator, TextPool, TreeChain, XGBoostChain, bottom_up, escalate, feedback_loop, pair_text,
                             propose_template, template_schema)
from tabsynth.llm import LLMClient, LLMError, StubServer

TEMPLATE = {"name": "t", "columns": {"species": {"values": ["Adelie", "Chinstrap", "Gentoo"]}, "island": {"values": ["Biscoe", "Dream", "Torgersen"]}},
            "rules": [{"name": "gentoo on biscoe", "if": {"column": "species", "op": "==", "value": "Gentoo"}, "then": {"column": "island", "op": "==", "value": "Biscoe"}},
                      {"name": "gentoo heavy", "if": {"column": "species", "op": "==", "value": "Gentoo"}, "then": {"column": "body_mass_g", "op": ">=", "value": 4000}}]}
NOTES = pd.DataFrame({'note': ['good', 'fine', 'bad', 'great', 'so-so', 'awful'], 'mood': ['positive', 'neutral', 'negative'] * 2})


@pytest.fixture(scope='module')
def penguins():
    ds = load('penguins')
    return ds.frame, ds.schema


@pytest.mark.parametrize('name', ['independent', 'gaussian_copula', 'random_forest', 'xgboost'])
def test_the_same_seed_gives_the_same_rows(penguins, name):
    df, s = penguins
    h = HybridSynthesizer(TEMPLATE, name, random_state=0).fit(df, s)
    a, b = h.sample(300, seed=3), h.sample(300, seed=3)
    assert a.equals(b) and not a.equals(h.sample(300, seed=4))
    assert h.report_.hard_rate == 0 and h.template_.violations(a).hard_rate == 0
    assert (a[a.species == 'Gentoo'].island == 'Biscoe').all() and (a[a.species == 'Gentoo'].body_mass_g >= 4000).all()


@pytest.mark.parametrize('gen', [Independent(random_state=0), GaussianCopula(random_state=0), RandomForestChain(random_state=0), XGBoostChain(random_state=0)])
def test_generators_keep_types_ranges_and_conditions(penguins, gen):
    df, s = penguins
    gen.fit(df, s, first=['species'])
    cond = pd.DataFrame({'species': ['Chinstrap'] * 200})
    rows = gen.sample(200, conditions=cond)
    assert (rows.species == 'Chinstrap').all() and list(rows.columns) == list(df.columns)
    assert rows.dtypes.tolist() == df.dtypes.tolist()
    assert rows.flipper_length_mm.dropna().between(df.flipper_length_mm.min(), df.flipper_length_mm.max()).all()
    assert (rows.year.isin([2007, 2008, 2009])).all()
    assert set(rows.island.dropna()) <= set(df.island)


def test_conditions_that_contradict_the_data(penguins):
    df, s = penguins
    g = GaussianCopula(random_state=0).fit(df, s)
    with pytest.raises(ValueError, match=r"asks for \['Atlantis'\], which the training rows never hold"):
        g.sample(1, conditions=pd.DataFrame({'island': ['Atlantis']}))
    with pytest.raises(ValueError, match='outside the training range'):
        g.sample(1, conditions=pd.DataFrame({'body_mass_g': [1e6]}))
    with pytest.raises(ValueError, match='missing values'):
        g.sample(2, conditions=pd.DataFrame({'island': ['Dream', None]}))
    with pytest.raises(KeyError, match="did you mean 'island'"):
        g.sample(1, conditions=pd.DataFrame({'islands': ['Dream']}))
    chain = RandomForestChain(random_state=0).fit(df, s, first=['species'])
    with pytest.raises(ValueError, match=r"fit it with first=\['sex'\]"):
        chain.sample(1, conditions=pd.DataFrame({'sex': ['male']}))


def test_templates_with_unknown_columns_or_impossible_values(penguins):
    df, s = penguins
    unknown = {**TEMPLATE, 'columns': {**TEMPLATE['columns'], 'beak': {'values': ['long']}}}
    with pytest.raises(RuleError, match=r"\$.columns.beak: unknown column 'beak'"):
        HybridSynthesizer(unknown, 'independent').fit(df, s)
    impossible = {**TEMPLATE, 'rules': TEMPLATE['rules'] + [{'name': 'giants', 'then': {'column': 'body_mass_g', 'op': '>', 'value': 99999}}]}
    with pytest.raises(RuleError, match=r'outside its range \[2700, 6300\] in the schema'):
        HybridSynthesizer(impossible, 'independent').fit(df, s)
    wrong_value = {**TEMPLATE, 'columns': {**TEMPLATE['columns'], 'island': {'values': ['Biscoe', 'Atlantis']}}}
    with pytest.raises(RuleError, match=r'\$.columns.island.values\[1\]'):
        HybridSynthesizer(wrong_value, 'independent').fit(df, s)


def test_rules_the_generator_cannot_meet_end_with_counts(penguins):
    df, s = penguins
    harsh = {**TEMPLATE, 'rules': [{'name': 'tiny adelies', 'if': {'column': 'species', 'op': '==', 'value': 'Adelie'},
                                    'then': {'column': 'sex', 'op': '==', 'value': 'female'}}]}
    h = HybridSynthesizer(harsh, Independent(random_state=0), max_tries=2).fit(df.dropna(), s)
    h.generator_.values_['sex'] = np.array(['male'])   # a generator that never writes the value the rule needs
    with pytest.raises(RuleError, match=r"still break a hard rule after 2 resampling rounds.*'tiny adelies'"):
        h.sample(200, seed=0)


def test_text_pool(penguins):
    df, s = penguins
    pool = TextPool(NOTES, text='note', label='mood')
    paired = pair_text(df, pool, 'species', {'Gentoo': ['positive'], 'Adelie': ['negative', 'neutral'], 'Chinstrap': ['neutral']}, seed=0)
    assert (paired[paired.species == 'Gentoo'].mood == 'positive').all()
    ps = Schema.infer(paired, target='species').edit('note', kind='text', categories=None)
    tmpl = {**TEMPLATE, 'columns': {**TEMPLATE['columns'], 'mood': {'values': ['negative', 'neutral', 'positive']}},
            'rules': [{'name': 'gentoo mood', 'if': {'column': 'species', 'op': '==', 'value': 'Gentoo'}, 'then': {'column': 'mood', 'op': '==', 'value': 'positive'}}]}
    h = HybridSynthesizer(tmpl, 'random_forest', text=pool, text_by='mood', random_state=0).fit(paired, ps)
    rows = h.sample(300, seed=0)
    assert all(n in set(pool.groups[m]) for n, m in zip(rows.note, rows.mood))
    assert (rows[rows.species == 'Gentoo'].mood == 'positive').all()
    no_negative = TextPool(NOTES[NOTES.mood != 'negative'], text='note', label='mood')
    with pytest.raises(ValueError, match=r"asks for mood \['negative'\], but the text pool has no such sentence"):
        HybridSynthesizer(tmpl, 'independent', text=no_negative, text_by='mood').fit(paired, ps)
    with pytest.raises(ValueError, match='is free text'):
        Independent().fit(paired, ps)
    with pytest.raises(KeyError, match='no labels for species'):
        pair_text(df, pool, 'species', {'Gentoo': ['positive']})


def test_ctgan_refuses_a_tiny_table_and_counts_unmet_conditions(penguins):
    df, s = penguins
    with pytest.raises(ValueError, match='needs at least 50 training rows.*got 20'):
        CTGAN().fit(df.head(20), s)

    class Never:   # an SDV synthesizer that never writes a Gentoo
        def __init__(self): self.calls = 0
        def sample_remaining_columns(self, known, max_tries_per_batch=100):
            self.calls += 1
            return {'penguins': df[df.species == 'Adelie'].head(len(known)).assign(island=known.island.to_numpy()[:min(len(known), 152)])}
    g = SDVGenerator('ctgan', max_tries=3)
    g._remember(df, s)
    g.sdv_ = type('S', (), {'synthesizer_': Never()})()
    with pytest.raises(ConditionError, match=r"could not meet 10 of 10 conditioned rows after 3 rounds.*'species': 'Gentoo'.*10 of 10 missing"):
        g.sample(10, conditions=pd.DataFrame({'species': ['Gentoo'] * 10, 'island': ['Biscoe'] * 10}))
    assert g.sdv_.synthesizer_.calls == 3


def test_switching_templates_needs_no_refit(penguins):
    df, s = penguins
    h = HybridSynthesizer(TEMPLATE, 'random_forest', random_state=0).fit(df, s)
    gentoo = {**TEMPLATE, 'columns': {**TEMPLATE['columns'], 'species': {'values': ['Gentoo']}}}
    h2 = h.with_template(gentoo)
    assert h2.generator_ is h.generator_ and set(h2.sample(50, seed=0).species) == {'Gentoo'}
    other = {'name': 'sexes', 'columns': {'sex': {'values': ['male', 'female']}}, 'rules': []}
    with pytest.raises(ValueError, match='fit a new HybridSynthesizer'):
        h.with_template(other)
    with pytest.raises(RuntimeError, match='not fitted yet'):
        HybridSynthesizer(TEMPLATE).sample(3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="did you mean 'xgboost'"): bottom_up('xgbost')
    with pytest.raises(ValueError, match="use 'random_forest' or 'xgboost'"): TreeChain('forest')
    with pytest.raises(ValueError, match='max_parents=0'): TreeChain(max_parents=0)
    with pytest.raises(ValueError, match='0 rows'): Independent().fit(pd.DataFrame({'a': []}))
    with pytest.raises(ValueError, match='duplicate column names'): Independent().fit(pd.DataFrame([[1, 2]], columns=['a', 'a']))


def test_escalate_climbs_the_ladder():
    g = escalate(Independent(random_state=1))
    assert isinstance(g, GaussianCopula) and g.random_state == 1
    g = escalate(g)
    assert isinstance(g, TreeChain) and g.model == 'random_forest' and g.max_parents == 4
    g = escalate(g)
    assert g.max_parents == 8 and g.max_rows == 10000
    assert escalate(XGBoostChain(max_rows=20000)) is None


def _template_reply(tmpl): return {'text': json.dumps(tmpl)}


def test_the_rule_provider_makes_one_call_when_the_reply_is_valid(penguins):
    df, s = penguins
    with StubServer([_template_reply(TEMPLATE)]) as server:
        p = propose_template('a summary', LLMClient('stub', server.base_url), s, ['species', 'island'])
        sent = server.requests
    assert p.calls == 1 and not p.rejects and p.template.name == 't' and len(sent) == 1
    assert sent[0]['response_format']['json_schema']['schema'] == template_schema(s, ['species', 'island'])


def test_the_rule_provider_rejects_garbage_with_reasons(penguins):
    df, s = penguins
    steps = [{'text': 'Sure! Here is a template: species -> island'}, {'text': '{"columns": {"species": {"values": ["Emperor"]}}, "rules": []}'},
             {'text': '{"name": "t", "columns": {', 'finish_reason': 'length'}]
    with StubServer(steps) as server:
        with pytest.raises(LLMError, match='no valid template in 3 calls'):
            propose_template('a summary', LLMClient('stub', server.base_url), s, ['species'], max_retries=2)
        assert len(server.requests) == 3
        assert 'That template has problems' in server.requests[1]['messages'][-1]['content']


def test_feedback_loop_arguments(penguins):
    df, s = penguins
    h = HybridSynthesizer(TEMPLATE, 'independent')
    with pytest.raises(ValueError, match='at least 1 round'): feedback_loop(h, df, df, s, rounds=0)
    d = load('diabetes')
    with pytest.raises(ValueError, match='needs a classification target'):
        feedback_loop(HybridSynthesizer({'columns': {'sex': {'values': [d.frame.sex.iloc[0]]}}}, 'independent'), d.frame, d.frame, d.schema)


def test_feedback_loop_retrains_then_accepts(penguins):
    df, s = penguins
    d = df.dropna().reset_index(drop=True)
    tmpl = {'name': 'species only', 'columns': {'species': {'values': ['Adelie', 'Chinstrap', 'Gentoo'], 'weights': [0.44, 0.2, 0.36]}}}
    hist = feedback_loop(HybridSynthesizer(tmpl, 'independent', random_state=0), d.iloc[::2], d.iloc[1::2], s, pair=('species', 'island'),
                         rows=600, rounds=4, min_auroc=0.95, max_xmodal=0.2, progress=False)
    assert hist.rounds.action.iloc[0] == 'retrain bottom-up' and hist.decision == 'accept'
    assert hist.rounds.generator.iloc[0] == 'independent' and len(hist.rows) == 600


@pytest.mark.parametrize('gen', [GaussianCopula(random_state=0), RandomForestChain(random_state=0), XGBoostChain(random_state=0)])
def test_datetimes_of_any_unit_and_missing_values(gen):
    rng = np.random.default_rng(0)
    days = np.datetime64('2020-01-01') + rng.integers(0, 365, 400).astype('timedelta64[D]')
    d = pd.DataFrame({'a': rng.normal(size=400), 'when': days})          # datetime64[s]: pandas keeps numpy's unit
    d.loc[:39, 'when'] = pd.NaT
    rows = gen.fit(d).sample(2000)
    w = rows.when.dropna()
    assert w.min() >= d.when.min() and w.max() <= d.when.max() and (w == w.dt.normalize()).all()
    assert 0.05 < rows.when.isna().mean() < 0.15


def test_the_copula_does_not_read_a_missing_number_as_a_small_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=3000)
    d = pd.DataFrame({'a': a, 'b': 0.9 * a + 0.44 * rng.normal(size=3000)})
    d.loc[rng.random(3000) < 0.2, 'b'] = np.nan                          # missing completely at random
    r = GaussianCopula(random_state=0).fit(d).sample(20000)
    assert abs(r.a[r.b.isna()].mean() - r.a[r.b.notna()].mean()) < 0.1   # no invented pattern
    assert abs(r.a.corr(r.b) - d.a.corr(d.b)) < 0.05 and abs(r.b.isna().mean() - 0.2) < 0.02


def test_resampling_keeps_the_templates_shares(penguins):
    df, s = penguins
    t = {'columns': {'species': {'values': ['Adelie', 'Chinstrap', 'Gentoo']}},
         'rules': [{'name': 'gentoo female', 'if': {'column': 'species', 'op': '==', 'value': 'Gentoo'}, 'then': {'column': 'sex', 'op': '==', 'value': 'female'}}]}
    h = HybridSynthesizer(t, 'independent', random_state=0).fit(df, s)
    r = h.sample(6000, seed=0)
    assert h.report_.resampled > 500 and (r[r.species == 'Gentoo'].sex == 'female').all()
    assert r.species.value_counts(normalize=True).sub(1 / 3).abs().max() < 0.02


def test_repairs_are_counted_once_per_returned_row(penguins):
    df, s = penguins
    t = {**TEMPLATE, 'rules': TEMPLATE['rules'] + [{'name': 'gentoo long', 'if': {'column': 'species', 'op': '==', 'value': 'Gentoo'},
                                                    'then': {'column': 'bill_length_mm', 'op': '>=', 'value': 45}}]}
    h = HybridSynthesizer(t, 'independent', random_state=0).fit(df.dropna(), s)
    r = h.sample(3000, seed=0)
    gentoo = r[r.species == 'Gentoo']
    on_bound = ((gentoo.body_mass_g == 4000) | (gentoo.bill_length_mm == 45)).sum()   # a repaired row sits exactly on the bound it was clipped to
    assert 0 < h.report_.repaired <= on_bound <= (r.species == 'Gentoo').sum()


def test_escalate_skips_steps_that_change_nothing():
    df = load('penguins').frame
    g = RandomForestChain(random_state=0).fit(df, load('penguins').schema)
    nxt = escalate(g, len(df))                                          # 344 rows, 7 parents at most: more of either changes nothing
    assert isinstance(nxt, XGBoostChain) and nxt.max_parents == 12


def test_the_rule_provider_survives_replies_of_the_wrong_shape(penguins):
    df, s = penguins
    bad = {'columns': {'species': {'values': ['Adelie']}}, 'rules': [{'then': {'column': 'island', 'op': ['=='], 'value': 'Biscoe'}}]}
    with StubServer([{'text': json.dumps(bad)}]) as server:
        with pytest.raises(LLMError) as e:
            propose_template('a summary', LLMClient('stub', server.base_url), s, ['species'], max_retries=1)
    assert len(e.value.replies) == 2 and len(e.value.rejects) == 2


def test_template_only_columns(penguins):
    df, s = penguins
    pool = TextPool(NOTES, text='note', label='mood')
    paired = pair_text(df, pool, 'species', {'Gentoo': ['positive'], 'Adelie': ['negative', 'neutral'], 'Chinstrap': ['neutral']}, seed=0)
    ps = Schema.infer(paired, target='species').edit('note', kind='text', categories=None)
    tmpl = {**TEMPLATE, 'columns': {**TEMPLATE['columns'], 'mood': {'values': ['negative', 'neutral', 'positive']}},
            'rules': [{'name': 'gentoo mood', 'if': {'column': 'species', 'op': '==', 'value': 'Gentoo'}, 'then': {'column': 'mood', 'op': '==', 'value': 'positive'}}]}
    h = HybridSynthesizer(tmpl, 'random_forest', text=pool, text_by='mood', template_only='mood', random_state=0).fit(paired, ps)
    assert 'mood' not in h.generator_.schema_ and h.generator_.order_[:2] == ['species', 'island']
    rows = h.sample(300, seed=0)
    assert (rows[rows.species == 'Gentoo'].mood == 'positive').all() and rows.note.notna().all()
    with pytest.raises(ValueError, match="template_only names \\['weather'\\]"):
        HybridSynthesizer(tmpl, 'independent', template_only='weather').fit(paired, ps)
    with pytest.raises(ValueError, match="target 'species' cannot be template-only"):
        HybridSynthesizer(tmpl, 'independent', template_only='species').fit(paired, ps)
