"""SCM: reproducibility, key integrity, chunked and Dask generation, the relational evaluation, and the bad input the issue names."""
import json
import numpy as np
import pandas as pd
import pytest
from tabsynth.scm import (ACTIVATIONS, PAPER_SCHEMA, SCM, RelationalSCM, aux_gain, ba_dag, check_keys, generate, knn_predict,
                          naive_scm, parse_ddl, read_database, row_embeddings)

SHOP = {'tables': [{'name': 'customers', 'rows': 200, 'columns': 5},
                   {'name': 'orders', 'rows': 1500, 'columns': 5, 'targets': 1},
                   {'name': 'items', 'rows': 3000, 'columns': 3}],
        'foreign_keys': [{'table': 'orders', 'references': 'customers', 'skew': 1.0, 'latent_edges': 2},
                         {'table': 'items', 'references': 'orders'}]}


def small_paper(main=3000, aux=200):
    s = json.loads(json.dumps(PAPER_SCHEMA))
    s['tables'][0]['rows'], s['tables'][1]['rows'] = main, aux
    return s


# -- bad input the issue names -------------------------------------------------------------------------------------------
def test_a_cycle_of_foreign_keys_is_refused():
    s = {'tables': [{'name': t, 'rows': 5, 'columns': 2} for t in 'abc'],
         'foreign_keys': [{'table': 'a', 'references': 'b'}, {'table': 'b', 'references': 'c'}, {'table': 'c', 'references': 'a'}]}
    with pytest.raises(ValueError, match='the foreign keys form a cycle: a -> b -> c -> a'): RelationalSCM(s)
    with pytest.raises(ValueError, match='cycle: a -> a'):
        RelationalSCM({'tables': [{'name': 'a', 'rows': 5, 'columns': 2}], 'foreign_keys': [{'table': 'a', 'references': 'a'}]})


def test_a_table_with_zero_rows_is_refused():
    s = small_paper(); s['tables'][1]['rows'] = 0
    with pytest.raises(ValueError, match="table 'aux': rows must be an integer >= 1, got 0"): RelationalSCM(s)
    with pytest.raises(ValueError, match=r"rows\['aux'\] must be an integer >= 1, got 0"): RelationalSCM(small_paper(), random_state=0).sample({'aux': 0})


def test_more_categories_than_pre_run_rows_is_refused():
    with pytest.raises(ValueError, match='allows up to 80 categories but the pre-run has only 60 rows'):
        SCM(n_categories=80, pre_rows=60)
    labels = [f'v{i}' for i in range(60)]   # labels a schema fixes count too
    with pytest.raises(ValueError, match="column 'tier': 60 categories but only 50 pre-run rows"):
        RelationalSCM({'tables': [{'name': 'a', 'rows': 5, 'column_names': ['tier', 'x'], 'categories': {'tier': labels}}]}, pre_rows=50)


@pytest.mark.parametrize('bad', [0, -2, 1.5, True])
def test_hidden_dim_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match='hidden_dim must be an integer >= 1'): SCM(hidden_dim=bad)
    with pytest.raises(ValueError, match='hidden_dim must be an integer >= 1'): RelationalSCM(hidden_dim=bad)


def test_an_unknown_activation_is_named():
    with pytest.raises(ValueError, match="unknown activation 'gelu'; choose from identity, tanh"): SCM(activations=['relu', 'gelu'])
    with pytest.raises(ValueError, match='activations is empty'): SCM(activations=[])


@pytest.mark.parametrize('schema, message', [
    ({'tables': []}, "non-empty list 'tables'"),
    ({'tables': [{'name': 'a', 'rows': 5, 'columns': 2}], 'foreign_keys': [{'table': 'a', 'references': 'b'}]}, "'b' is not a table"),
    ({'tables': [{'name': 'a', 'rows': 5, 'columns': 2}, {'name': 'a', 'rows': 5, 'columns': 2}]}, 'appear more than once'),
    ({'tables': [{'name': 'a b', 'rows': 5, 'columns': 2}]}, 'must be an identifier'),
    ({'tables': [{'name': 'a', 'rows': 5, 'columns': 2, 'colums': 3}]}, "unknown keys \\['colums'\\]"),
    ({'tables': [{'name': 'a', 'rows': 5, 'columns': 0}]}, 'columns must be an integer >= 1'),
    ({'tables': [{'name': 'a', 'rows': 5, 'columns': 2, 'targets': 3}]}, '3 targets but only 2 columns'),
    ({'tables': [{'name': 'a', 'rows': 5, 'columns': 2}, {'name': 'b', 'rows': 5, 'columns': 2}],
      'foreign_keys': [{'table': 'a', 'references': 'b', 'skew': -1}]}, 'skew must be a number >= 0'),
    ({'tables': [{'name': 'a', 'rows': 5, 'columns': 2}, {'name': 'b', 'rows': 5, 'columns': 2}],
      'foreign_keys': [{'table': 'a', 'references': 'b', 'column': 'a_id'}]}, 'appear more than once'),
    ('{"tables": [', 'neither JSON nor SQL DDL'),
    ({'tables': [{'name': 'a', 'rows': 5, 'columns': 2}], 'foreign_keys': 5}, 'foreign_keys must be a list'),
])
def test_bad_schemas_say_what_is_wrong(schema, message):
    with pytest.raises(ValueError, match=message): RelationalSCM(schema)


@pytest.mark.parametrize('ddl, message', [
    ('CREATE TABLE t (id INT PRIMARY KEY, x REAL);', "table 't' has no row count"),
    ('-- rows: 5\nCREATE TABLE t (id INT PRIMARY KEY, x GEOMETRY);', "SQL type 'GEOMETRY' is not supported"),
    ('-- rows: 5\nCREATE TABLE t (a INT, b INT, x REAL, PRIMARY KEY (a, b));', 'composite primary key'),
    ('-- rows: 5\nCREATE TABLE t (id INT PRIMARY KEY, p INT REFERENCES q(id), x REAL);', "references table 'q'"),
    ('-- rows: 5\nCREATE TABLE u (id INT PRIMARY KEY, x REAL);\n-- rows: 5\nCREATE TABLE t (id INT PRIMARY KEY, p INT REFERENCES u(x), x REAL);',
     "which is not u's primary key"),
    ('SELECT 1;', 'no CREATE TABLE'),
    ('-- rows: 1e6\nCREATE TABLE t (id INT PRIMARY KEY, x REAL);', "cannot read the comment '-- rows: 1e6'"),
    ('-- rows: 5\nCREATE TABLE u (id INT PRIMARY KEY, x REAL);\n-- rows: 5\n-- foreign key p: skew 1.0\n'
     'CREATE TABLE t (id INT PRIMARY KEY, p INT REFERENCES u(id), x REAL);', "cannot read the comment '-- foreign key p: skew 1.0'"),
    ('-- rows: 5\nCREATE TABLE u (id INT PRIMARY KEY, x REAL);\n-- rows: 5\n-- foreign key q: skew 1.0, latent_edges 1\n'
     'CREATE TABLE t (id INT PRIMARY KEY, p INT REFERENCES u(id), x REAL);', "names no foreign key column"),
    ('-- rows: 5\nCREATE TABLE t (id INT PRIMARY KEY, key DATE, x REAL);', "column 'key': SQL type 'DATE' is not supported"),
    ('-- rows: 5\nCREATE TABLE t (id INT PRIMARY KEY, x REAL', 'unbalanced parentheses'),
])
def test_bad_ddl_says_what_is_wrong(ddl, message):
    with pytest.raises(ValueError, match=message): parse_ddl(ddl)


def test_ddl_reads_what_real_schemas_contain():
    ddl = '''/* a shop; the parser must skip this (and its parenthesis */
-- rows: 50
CREATE TABLE IF NOT EXISTS "public"."users" (
  id UUID PRIMARY KEY, -- a key of any type (it is generated as BIGINT
  "full name" VARCHAR(40) DEFAULT 'x,y',
  key TEXT,
  index int4,
  active BOOLEAN,
  tier ENUM('gold', 'silver', 'it''s'),
  KEY idx_tier (tier),
  UNIQUE (key)
);
-- rows: 200
-- targets: amount
-- foreign key buyer: skew 1.5, latent_edges 2
CREATE TABLE orders (oid BIGINT PRIMARY KEY, buyer UUID, amount NUMERIC(10, 2), note VARCHAR(20) CHECK (note <> ''),
                     CONSTRAINT fk_buyer FOREIGN KEY (buyer) REFERENCES users(id));'''
    s = parse_ddl(ddl)
    users, orders = s['tables']
    assert users['name'] == 'users' and users['primary_key'] == 'id'
    assert users['column_names'] == ['full name', 'key', 'index', 'active', 'tier']
    assert users['kinds']['index'] == 'integer' and users['categories'] == {'active': ['false', 'true'], 'tier': ['gold', 'silver', "it's"]}
    assert orders['target_names'] == ['amount'] and s['foreign_keys'] == [
        {'table': 'orders', 'column': 'buyer', 'references': 'users', 'skew': 1.5, 'latent_edges': 2}]
    m = RelationalSCM(ddl, random_state=0)
    db = m.sample(seed=0)
    check_keys(db, m)
    assert set(db['users'].tier.cat.categories) == {'gold', 'silver', "it's"} and list(db['users'].active.cat.categories) == ['false', 'true']
    again = RelationalSCM(m.to_sql(), random_state=0)   # quoted names, ENUM and BOOLEAN, key settings survive the round trip
    assert again.schema == m.schema


def test_odd_names_survive_the_sql_round_trip():
    s = {'tables': [{'name': 'users', 'rows': 30, 'column_names': ['key', 'full name'], 'primary_key': 'key id'},
                    {'name': 'orders', 'rows': 90, 'column_names': ['x'], 'target_names': ['amount, net']}],
         'foreign_keys': [{'table': 'orders', 'column': 'buyer id', 'references': 'users', 'skew': 0.123456789, 'latent_edges': 2}]}
    m = RelationalSCM(s, random_state=0)
    again = RelationalSCM(m.to_sql(), random_state=0)
    assert again.schema['foreign_keys'] == m.schema['foreign_keys'] and again.targets == m.targets
    assert parse_ddl('-- rows: 3\nCREATE TABLE t (key UUID PRIMARY KEY, x REAL);')['tables'][0]['primary_key'] == 'key'


def test_key_names_that_clash_with_generated_columns_are_refused():
    with pytest.raises(ValueError, match=r"table 'a': column names \['x0'\] appear more than once"):
        RelationalSCM({'tables': [{'name': 'a', 'rows': 5, 'columns': 3, 'primary_key': 'x0'}]})


@pytest.mark.parametrize('table, message', [
    ({'name': 'a', 'rows': 20, 'columns': 4, 'targets': 2, 'target_names': ['y']}, 'target_names needs column_names'),
    ({'name': 'a', 'rows': 20, 'column_names': ['p', 'q', 'r'], 'targets': 1}, 'targets=1 disagrees with its column_names'),
    ({'name': 'a', 'rows': 20, 'column_names': 'abc'}, 'column_names must be a list of non-empty strings'),
    ({'name': 'a', 'rows': 20, 'column_names': ['p'], 'categories': {'p': ['only']}}, 'at least 2 distinct labels'),
    ({'name': 'a', 'rows': 20, 'columns': 2, 'targets': 2}, "table 'a': 2 targets but its graph has only 1 nodes with parents"),
])
def test_bad_table_fields_name_the_table_and_field(table, message):
    with pytest.raises(ValueError, match=message): RelationalSCM({'tables': [table]})


# -- single table ----------------------------------------------------------------------------------------------------------
def test_ba_dag_is_a_topologically_ordered_dag():
    for seed in range(5):
        e = ba_dag(30, 3, np.random.default_rng(seed))
        assert all(a < b for a, b in e) and len(set(e)) == len(e) == 3 * 27


def test_scm_is_reproducible_from_config_and_seed():
    m = SCM(n_nodes=15, hidden_dim=3, categorical_share=0.5, n_targets=2, target_kind='mixed', random_state=7)
    a = m.sample(5000, seed=11)
    b = SCM.from_dict(json.loads(json.dumps(m.to_dict()))).sample(5000, seed=11)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(m.sample(1000, seed=11, start=4000), a.iloc[4000:])
    assert list(a.columns) == m.columns and len(m.targets) == 2
    assert not a.isna().any().any() and np.isfinite(a.select_dtypes('number')).all().all()


def test_every_activation_and_root_gives_finite_varying_columns():
    for act in ACTIVATIONS:
        for root in ('normal', 'gamma'):
            df = SCM(n_nodes=8, hidden_dim=2, activations=[act], roots=root, categorical_share=0, random_state=1).sample(2000, seed=0)
            assert np.isfinite(df.to_numpy()).all() and (df.std() > 0).all(), (act, root)


def test_categorical_columns_use_their_categories():
    m = SCM(n_nodes=10, categorical_share=1.0, n_categories=(3, 3), random_state=2)
    df = m.sample(4000, seed=0)
    for c in m.columns:
        if c in m.targets: continue
        assert isinstance(df[c].dtype, pd.CategoricalDtype) and len(df[c].cat.categories) == 3
        assert df[c].value_counts().min() > 0


def test_the_engine_beats_the_naive_numpy():
    import time
    m = SCM(random_state=0)
    def best(f):
        ts = []
        for _ in range(3): t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        return min(ts)
    assert best(lambda: naive_scm(m, 50_000, 0)) > 1.5 * best(lambda: m.sample(50_000, seed=0))   # 5-11x on an idle core


def test_chains_of_squares_stay_finite():
    m = SCM(n_nodes=40, hidden_dim=4, edges_per_node=3, activations=['square'], categorical_share=0.5, random_state=14)
    df = m.sample(100_000, seed=1)
    assert np.isfinite(df.select_dtypes('number').to_numpy()).all()


def test_numpy_integer_parameters_are_saved_as_json():
    m = SCM(n_nodes=np.int64(6), hidden_dim=np.int64(2), pre_rows=np.int64(100), random_state=np.int64(0))
    assert SCM.from_dict(json.loads(json.dumps(m.to_dict()))).sample(10, seed=0).equals(m.sample(10, seed=0))


@pytest.mark.parametrize('kw, message', [
    (dict(n_categories=None), 'n_categories must be an integer >= 2'), (dict(roots=None), 'roots must be a name or a list'),
    (dict(activations=None), 'activations must be a list'), (dict(pre_rows=2), 'pre_rows must be an integer >= 50'),
    (dict(target_kind='ordinal'), "target_kind must be 'numeric'"), (dict(categorical_share=1.5), 'categorical_share must be a number in'),
])
def test_bad_parameters_are_named(kw, message):
    with pytest.raises(ValueError, match=message): SCM(**kw)


# -- relational --------------------------------------------------------------------------------------------------------
def test_keys_hold_for_any_schema_and_sizes():
    m = RelationalSCM(SHOP, random_state=3)
    for rows in (None, {'customers': 1, 'orders': 50, 'items': 7}):
        db = m.sample(rows, seed=1)
        counts = check_keys(db, m)
        assert counts['orders.customers_id'] <= counts['customers']
        assert list(db['items'].columns[:3]) == ['items_id', 'orders_id', 'x0']


def test_check_keys_finds_a_dangling_foreign_key():
    m = RelationalSCM(SHOP, random_state=3)
    db = m.sample(seed=1)
    db['items'].loc[0, 'orders_id'] = 10**9
    with pytest.raises(ValueError, match="items.orders_id: 1 values point at no row of orders"): check_keys(db, m)


def test_skew_concentrates_children():
    flat = RelationalSCM(small_paper(20_000, 500), random_state=0)
    s = small_paper(20_000, 500); s['foreign_keys'][0]['skew'] = 1.5
    steep = RelationalSCM(s, random_state=0)
    top = lambda m: m.sample(seed=0)['main'].aux_id.value_counts().iloc[:10].sum() / 20_000
    assert top(steep) > 3 * top(flat)


def test_ddl_round_trip_keeps_names_types_and_targets():
    m = RelationalSCM(SHOP, random_state=3)
    again = RelationalSCM(m.to_sql(), random_state=3)
    assert again.targets == m.targets
    assert [t['rows'] for t in again.schema['tables']] == [t['rows'] for t in SHOP['tables']]
    for name in m.tables:
        kinds = {nd.name: nd.readout for nd in m.tables[name]['nodes'] if nd.kind != 'external'}
        assert {nd.name: nd.readout for nd in again.tables[name]['nodes'] if nd.kind != 'external'} == kinds


def test_schema_from_a_file(tmp_path):
    (tmp_path/'s.json').write_text(json.dumps(SHOP))
    (tmp_path/'s.sql').write_text(RelationalSCM(SHOP, random_state=0).to_sql())
    assert RelationalSCM(tmp_path/'s.json', random_state=0).to_dict() == RelationalSCM(SHOP, random_state=0).to_dict()
    assert set(RelationalSCM(str(tmp_path/'s.sql')).tables) == {'customers', 'orders', 'items'}
    with pytest.raises(FileNotFoundError, match='does not exist'): RelationalSCM(str(tmp_path/'missing.json'))


# -- chunked generation ------------------------------------------------------------------------------------------------
def test_generate_serial_equals_sample(tmp_path):
    m = RelationalSCM(SHOP, random_state=5)
    rep = generate(m, tmp_path/'db', chunk_rows=700, seed=9, client='serial', progress=False)
    assert list(rep.table) == m.order and rep.set_index('table').loc['items', 'parts'] == 5
    back, ref = read_database(tmp_path/'db'), m.sample(seed=9)
    for name in ref: pd.testing.assert_frame_equal(back[name], ref[name], check_categorical=False)
    sql = parse_ddl((tmp_path/'db'/'schema.sql').read_text())
    assert sql['foreign_keys'][0]['references'] == 'customers' and [t['name'] for t in sql['tables']] == m.order


def test_generate_on_a_local_dask_cluster(tmp_path):
    m = SCM(n_nodes=10, random_state=1)
    rep = generate(m, tmp_path/'t', rows=50_000, chunk_rows=12_000, seed=2, workers=2, progress=False)
    assert rep.loc[0, 'parts'] == 5 and rep.loc[0, 'workers'] >= 1 and rep.loc[0, 'peak_worker_mb'] > 0
    pd.testing.assert_frame_equal(read_database(tmp_path/'t')['data'], m.sample(50_000, seed=2).reset_index(drop=True), check_categorical=False)


def test_generate_refuses_a_full_folder_and_reads_only_finished_ones(tmp_path):
    m = SCM(n_nodes=5, random_state=1)
    generate(m, tmp_path/'t', rows=100, client='serial', progress=False)
    with pytest.raises(FileExistsError, match='pass overwrite=True'): generate(m, tmp_path/'t', rows=100, client='serial')
    generate(m, tmp_path/'t', rows=50, client='serial', progress=False, overwrite=True)
    assert len(read_database(tmp_path/'t')['data']) == 50
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('precious')
    with pytest.raises(FileExistsError, match='is not a folder that generate'):
        generate(m, tmp_path/'mine', rows=10, client='serial', overwrite=True)
    assert (tmp_path/'mine'/'notes.txt').read_text() == 'precious'
    with pytest.raises(TypeError, match='an SCM or a RelationalSCM'): generate(object(), tmp_path/'u')
    with pytest.raises(FileNotFoundError, match='not a folder that generate'): read_database(tmp_path/'mine')


def test_overwrite_keeps_the_old_output_until_the_new_one_is_complete(tmp_path):
    m = RelationalSCM(SHOP, random_state=5)
    generate(m, tmp_path/'db', chunk_rows=1000, client='serial', progress=False)
    before = read_database(tmp_path/'db')
    for bad in (dict(rows={'orders': 0}), dict(workers=0), dict(chunk_rows=0)):
        with pytest.raises(ValueError): generate(m, tmp_path/'db', client='serial', overwrite=True, progress=False, **bad)
        after = read_database(tmp_path/'db')
        assert all(after[k].equals(before[k]) for k in before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['db']   # no staging folder left behind


def test_overwrite_refuses_folders_with_a_foreign_schema_json(tmp_path):
    d = tmp_path/'demo'; (d/'scm').mkdir(parents=True)
    (d/'schema.json').write_text('{}'); (d/'report.json').write_text('{}'); (d/'scm'/'main.csv').write_text('a')
    with pytest.raises(FileExistsError, match='not a folder that generate'):
        generate(SCM(n_nodes=3, random_state=0), d, rows=10, client='serial', overwrite=True)
    assert (d/'report.json').exists() and (d/'scm'/'main.csv').exists()


# -- relational evaluation ---------------------------------------------------------------------------------------------
def test_knn_weights_by_inverse_distance():
    X = np.array([[0.], [1.], [3.]]); y = np.array([0., 10., 30.])
    w = 1 / np.array([0.5, 0.5, 2.5])
    assert np.isclose(knn_predict(X, y, np.array([[0.5]]), k=3)[0], (w * y).sum() / w.sum())


def test_embeddings_cover_every_row_and_link_through_keys():
    m = RelationalSCM(small_paper(400, 50), random_state=0)
    db = m.sample(seed=0)
    e = row_embeddings(db, m, dim=16, exclude={'main': m.targets['main']}, walks_per_row=4, walk_length=10, epochs=2)
    assert e['main'].shape == (400, 16) and e['aux'].shape == (50, 16) and np.isfinite(e['main']).all()


def test_aux_gain_has_both_methods_and_every_dim():
    r = aux_gain(RelationalSCM(small_paper(600, 150), random_state=0), dims=(16, 32), seed=0, walks_per_row=5, epochs=3)
    assert set(r.method) == {'embdi', 'joined features'} and sorted(r[r.method == 'embdi'].dim) == [16, 32]
    assert ((r['with aux'] > 0) & (r['without aux'] > 0)).all()
    with pytest.raises(ValueError, match='no target column'):
        aux_gain(RelationalSCM({'tables': [{'name': 'a', 'rows': 50, 'columns': 3}]}, random_state=0))
