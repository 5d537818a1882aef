"""Bad input across the command line and the public API: each case gives one clear error that names the problem and the fix,
exits with status 2 (the command line), and leaves no output behind, not even a half-written one."""
import json
import numpy as np
import pandas as pd
import pytest
from pathlib import Path
from tabsynth.cli import main
from tabsynth.datasets import load

PENGUINS = load('penguins').frame


def table(tmp_path, name='data.csv', df=None, **kw):
    "A CSV (or other) file of the penguins, or of `df`, in tmp_path."
    p = tmp_path/name
    (PENGUINS if df is None else df).to_csv(p, index=False, **kw)
    return p


def fails(tmp_path, capsys, args, message, out='out'):
    "Run the command in-process: status 2, one line on stderr containing `message`, and nothing written at --out (nor staged beside it)."
    before = set(tmp_path.iterdir())
    code = main([*args, '--out', str(tmp_path/out), '--no-progress'])
    err = capsys.readouterr().err
    assert code == 2, f"status {code}; stderr: {err}"
    assert message in err, err
    assert err.startswith(f'tabsynth {args[0]}: ')
    left = {p.name for p in set(tmp_path.iterdir()) - before}
    assert not left, f"left behind: {left}"
    return err


# --- files that cannot be read -------------------------------------------------------------------------------------------

def raw(tmp_path, name, data):
    p = tmp_path/name
    p.write_bytes(data) if isinstance(data, bytes) else p.write_text(data)
    return p

FILES = [
    ('missing', None, 'no such file'),
    ('empty.csv', b'', 'is empty (0 bytes)'),
    ('blank.csv', '\n\n\n', 'holds no data'),
    ('header.csv', 'species,island\n', 'but no rows'),
    ('latin.csv', 'species,island\nAdélie,Dream\nGentoo,Biscoe\n'.encode('latin-1'), '--encoding latin-1'),
    ('binary.csv', b'PK\x03\x04\x00\x00binary\x00', 'binary file'),
    ('dup.csv', 'species,island,species\na,b,c\n', "'species' more than once"),
    ('noname.csv', ',species,island\n0,a,b\n', 'has no name'),
    ('ragged.csv', 'species,island\na,b\nc,d,e,f\n', 'check the delimiter'),
    ('table.xlsx', b'PK\x03\x04', "tabsynth reads"),
    ('fake.parquet', 'species,island\na,b\n', 'not a readable Parquet file'),
]

@pytest.mark.parametrize('name,data,message', FILES, ids=[f[0] for f in FILES])
def test_unreadable_files(tmp_path, capsys, name, data, message):
    path = tmp_path/'missing.csv' if data is None else raw(tmp_path, name, data)
    fails(tmp_path, capsys, ['date', str(path), '--target', 'species'], message)


def test_a_folder_as_input(tmp_path, capsys):
    (tmp_path/'folder.csv').mkdir()
    fails(tmp_path, capsys, ['hybrid', str(tmp_path/'folder.csv'), '--target', 'species'], 'is a folder')


def test_wrong_delimiter_names_the_right_one(tmp_path, capsys):
    p = table(tmp_path, sep=';')
    fails(tmp_path, capsys, ['date', str(p), '--target', 'species', '--sep', ','], "pass --sep ';'")


@pytest.mark.parametrize('opts,message', [(['--sep', ';;'], 'give one character'), (['--encoding', 'klingon'], 'not an encoding Python knows')])
def test_reading_options(tmp_path, capsys, opts, message):
    fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species', *opts], message)


def test_markers_of_missing_values_read_as_missing(tmp_path):
    p = table(tmp_path, df=PENGUINS.assign(body_mass_g=PENGUINS.body_mass_g.astype(object).where(PENGUINS.index % 25 > 0, '?')))
    assert main(['hybrid', str(p), '--target', 'species', '--na-values', '?', '--template', str(template(tmp_path)),
                 '--out', str(tmp_path/'out'), '--no-progress', '--rows', '100']) == 0
    assert pd.read_csv(tmp_path/'out/synthetic.csv').body_mass_g.dtype.kind == 'f'


def test_the_right_encoding_reads(tmp_path):
    from tabsynth.cli import read_table
    p = raw(tmp_path, 'latin.csv', 'species,island\nAdélie,Dream\n'.encode('latin-1'))
    assert read_table(p, encoding='latin-1').species[0] == 'Adélie'
    assert read_table(raw(tmp_path, 'bom.csv', '\ufeffspecies;island\nx;y\n'.encode('utf-8'))).columns.tolist() == ['species', 'island']


# --- tables that read but cannot be used -------------------------------------------------------------------------------

def frame_cases():
    p = PENGUINS
    return [
        ('unknown target', p, ['--target', 'specis'], "did you mean 'species'"),
        ('empty target', p.assign(species=np.nan), ['--target', 'species'], "is empty in all 344 rows"),
        ('one class', p.assign(species='Adelie'), ['--target', 'species'], 'single value'),
        ('rare class', p.assign(island=np.where(p.index == 0, 'Atlantis', p.island)), ['--target', 'island'], "class 'Atlantis'"),
        ('only the target', p[['species']], ['--target', 'species'], 'only the target'),
        ('infinite values', p.assign(body_mass_g=p.body_mass_g.replace(3750, np.inf)), ['--target', 'species'], 'infinite values'),
        ('an empty column', p.assign(notes=np.nan), ['--target', 'species'], "column 'notes' has no values"),
        ('an identifier', p.assign(ring=[f'R{i:04d}' for i in range(len(p))]), ['--target', 'species'], '--drop COLUMN'),
        ('free text', p.assign(note=[f'seen {i} times by the old pier' for i in range(len(p))]), ['--target', 'species'], '--drop note'),
        ('huge categorical', p.assign(tag=[f't{i % 300}' for i in range(len(p))]), ['--target', 'species', '--max-levels', '100'], '--max-levels'),
        ('numbers with text markers', p.assign(body_mass_g=p.body_mass_g.astype(object).where(p.index % 25 > 0, '?')), ['--target', 'species'], "--na-values TOKEN"),
        ('drop unknown', p, ['--target', 'species', '--drop', 'beak'], "--drop 'beak'"),
        ('drop the target', p, ['--target', 'species', '--drop', 'species'], 'would drop the target'),
        ('kind without =', p, ['--target', 'species', '--kind', 'year'], 'COLUMN=KIND'),
        ('unknown kind', p, ['--target', 'species', '--kind', 'year=colour'], "not one of"),
        ('holdout too large', p, ['--target', 'species', '--holdout', '1.5'], 'in [0, 1)'),
        ('rho not a number', p, ['--target', 'species', '--rho', 'high'], 'give a number'),
    ]

@pytest.mark.parametrize('name,df,opts,message', frame_cases(), ids=[c[0] for c in frame_cases()])
def test_unusable_tables(tmp_path, capsys, name, df, opts, message):
    fails(tmp_path, capsys, ['date', str(table(tmp_path, df=df)), *opts], message)


def test_a_tiny_table_cannot_be_split(tmp_path, capsys):
    tiny = PENGUINS.groupby('species').head(3)
    fails(tmp_path, capsys, ['date', str(table(tmp_path, df=tiny)), '--target', 'species'], '--min-rows')
    fails(tmp_path, capsys, ['date', str(table(tmp_path, df=tiny.head(4))), '--target', 'species'], 'too few to split')


def test_datetimes_are_generated_as_dates(tmp_path, capsys):
    days = pd.Timestamp('2024-01-01') + pd.to_timedelta(np.arange(len(PENGUINS)) % 90, unit='D')
    p = table(tmp_path, df=PENGUINS.assign(seen=days.strftime('%Y-%m-%d')))
    assert main(['hybrid', str(p), '--target', 'species', '--template', str(template(tmp_path)), '--out', str(tmp_path/'out'),
                 '--no-progress', '--rows', '200']) == 0
    seen = pd.to_datetime(pd.read_csv(tmp_path/'out/synthetic.csv').seen)
    assert seen.between('2024-01-01', '2024-03-31').all() and (seen == seen.dt.normalize()).all()


# --- output folders -------------------------------------------------------------------------------------------------------

def test_out_is_a_file(tmp_path, capsys):
    (tmp_path/'out').write_text('mine')
    fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species'], 'is a file', out='out')


def test_out_holds_someone_elses_files(tmp_path, capsys):
    (tmp_path/'out').mkdir(); (tmp_path/'out'/'thesis.tex').write_text('keep')
    fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species'], 'not empty')
    fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species', '--overwrite'], 'no tabsynth command wrote')
    assert (tmp_path/'out'/'thesis.tex').read_text() == 'keep'


def test_an_interrupt_leaves_nothing(tmp_path, capsys, monkeypatch):
    import tabsynth.hybrid
    def interrupted(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(tabsynth.hybrid.HybridSynthesizer, 'sample', interrupted)
    p, t = table(tmp_path), template(tmp_path)
    before = set(tmp_path.iterdir())
    assert main(['hybrid', str(p), '--target', 'species', '--template', str(t), '--out', str(tmp_path/'out'), '--no-progress']) == 130
    assert 'nothing half-written' in capsys.readouterr().err
    assert set(tmp_path.iterdir()) == before


# --- templates ------------------------------------------------------------------------------------------------------------

def template(tmp_path, t=None, name='template.json'):
    t = t if t is not None else {'name': 'balanced', 'columns': {'species': {'values': ['Adelie', 'Chinstrap', 'Gentoo']}}}
    p = tmp_path/name
    p.write_text(t if isinstance(t, str) else json.dumps(t))
    return p

TEMPLATES = [
    ('not JSON', "{'name': 'single quotes'}", 'not JSON'),
    ('unknown column', {'name': 't', 'columns': {'specis': {'values': ['Adelie']}}}, 'specis'),
    ('values not a list', {'name': 't', 'columns': {'species': {'values': 'Adelie'}}}, 'values'),
    ('value outside the domain', {'name': 't', 'columns': {'species': {'values': ['Emperor']}}}, 'Emperor'),
    ('rule on an unknown column', {'name': 't', 'columns': {'species': {'values': ['Adelie']}},
                                   'rules': [{'then': {'column': 'wings', 'op': '>', 'value': 2}}]}, 'wings'),
    ('rule with a string for a number', {'name': 't', 'columns': {'species': {'values': ['Adelie']}},
                                         'rules': [{'then': {'column': 'body_mass_g', 'op': '>', 'value': 'heavy'}}]}, "got the string 'heavy'"),
    ('a list, not an object', [1, 2], 'template'),
]

@pytest.mark.parametrize('name,t,message', TEMPLATES, ids=[c[0] for c in TEMPLATES])
def test_bad_templates(tmp_path, capsys, name, t, message):
    err = fails(tmp_path, capsys, ['hybrid', str(table(tmp_path)), '--target', 'species', '--template', str(template(tmp_path, t))], message)
    assert len(err) < 2000


def test_template_file_missing_and_no_llm(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('OPENAI_MODEL', raising=False)
    fails(tmp_path, capsys, ['hybrid', str(table(tmp_path)), '--target', 'species', '--template', str(tmp_path/'rules.json')], 'no such file')
    fails(tmp_path, capsys, ['hybrid', str(table(tmp_path)), '--target', 'species'], 'needs a template')


@pytest.mark.parametrize('opts,message', [(['--generator', 'gan'], 'choose one of'), (['--rows', '0'], 'at least one row')])
def test_bad_hybrid_options(tmp_path, capsys, opts, message):
    fails(tmp_path, capsys, ['hybrid', str(table(tmp_path)), '--target', 'species', '--template', str(template(tmp_path)), *opts], message)


# --- language models ------------------------------------------------------------------------------------------------------

def test_llm_options(tmp_path, capsys, monkeypatch):
    for k in ('OPENAI_MODEL', 'OPENAI_BASE_URL', 'OPENAI_API_KEY'): monkeypatch.delenv(k, raising=False)
    fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species', '--llm-base-url', 'http://127.0.0.1:9/v1'], 'need --llm-model')
    fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species', '--llm-model', 'm', '--llm-replay'], 'needs --llm-cache')
    fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species', '--llm-model', 'm'], 'no key and no server')


def test_llm_garbage_is_rejected_with_reasons(tmp_path, capsys, monkeypatch):
    "A server that answers with prose, broken JSON and a template of unknown columns: three counted rejects, then a clear error, no output."
    from tabsynth.llm import StubServer
    monkeypatch.setenv('OPENAI_API_KEY', 'sk-test-never-logged')
    steps = [{'text': 'Sure! Here is a template you might like.'}, {'text': '{"name": "t", "columns": {'},
             {'text': json.dumps({'name': 't', 'columns': {'beak': {'values': ['long']}}})}]
    with StubServer(steps) as stub:
        err = fails(tmp_path, capsys, ['hybrid', str(table(tmp_path)), '--target', 'species', '--llm-base-url', stub.base_url,
                                       '--llm-model', 'stub'], 'gave no valid template in 3 calls')
    assert len(stub.requests) == 3 and 'sk-test' not in err


def test_llm_server_down(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('OPENAI_API_KEY', 'sk-test-never-logged')
    from tabsynth.llm import _free_port
    err = fails(tmp_path, capsys, ['hybrid', str(table(tmp_path)), '--target', 'species', '--llm-base-url', f'http://127.0.0.1:{_free_port()}/v1',
                                   '--llm-model', 'stub'], 'tabsynth hybrid: ')
    assert 'sk-test' not in err


# --- evaluate ---------------------------------------------------------------------------------------------------------------

def test_evaluate_mismatched_columns(tmp_path, capsys):
    real = table(tmp_path, 'real.csv')
    fails(tmp_path, capsys, ['evaluate', str(real), str(table(tmp_path, 'syn.csv', PENGUINS.drop(columns='sex'))), '--target', 'species'],
          "lack the real table's columns ['sex']")
    fails(tmp_path, capsys, ['evaluate', str(real), str(table(tmp_path, 'syn2.csv', PENGUINS.assign(extra=1))), '--target', 'species'],
          "columns the real table lacks: ['extra']")
    fails(tmp_path, capsys, ['evaluate', str(real), str(tmp_path/'nothing.csv'), '--target', 'species'], 'no such file')


def test_evaluate_values_outside_the_schema(tmp_path, capsys):
    syn = PENGUINS.assign(species=np.where(PENGUINS.index % 2 == 0, 'Emperor', PENGUINS.species))
    fails(tmp_path, capsys, ['evaluate', str(table(tmp_path, 'real.csv')), str(table(tmp_path, 'syn.csv', syn)), '--target', 'species'], 'Emperor')


# --- the public API -----------------------------------------------------------------------------------------------------------

def test_api_errors_name_the_problem():
    from tabsynth.core import Schema
    from tabsynth.rules import Template, RuleError
    from tabsynth.hybrid import HybridSynthesizer, bottom_up
    from tabsynth.date import DATESynthesizer
    from tabsynth.scm import RelationalSCM
    with pytest.raises(ValueError, match='not JSON|Expecting'): Schema.from_json('{"columns": [')
    with pytest.raises(RuleError, match='values'): Template.from_dict({'name': 't', 'columns': {'species': {'values': 3}}}).validate(Schema.infer(PENGUINS, 'species'))
    with pytest.raises(ValueError, match='duplicate column names'): bottom_up('independent').fit(pd.concat([PENGUINS, PENGUINS.species], axis=1))
    with pytest.raises(ValueError, match='0 rows'): bottom_up('gaussian_copula').fit(PENGUINS.iloc[:0])
    with pytest.raises(KeyError, match="did you mean 'species'"): DATESynthesizer().fit(PENGUINS, 'specie')
    with pytest.raises(TypeError, match='DataFrame'): HybridSynthesizer({'name': 't', 'columns': {}}).fit(PENGUINS.to_dict('records'))
    with pytest.raises(ValueError, match='hidden_dim'): RelationalSCM(None, hidden_dim=0)


# --- output folders that must never be deleted, and other review findings ------------------------------------------------

def test_out_is_the_current_folder_or_holds_the_input(tmp_path, capsys, monkeypatch):
    p = table(tmp_path)
    (tmp_path/'notes.md').write_text('keep')
    monkeypatch.chdir(tmp_path)
    for out in ('.', str(tmp_path), '..'):
        assert main(['date', str(p), '--target', 'species', '--out', out, '--overwrite', '--no-progress']) == 2
        assert 'current folder' in capsys.readouterr().err
    assert (tmp_path/'notes.md').read_text() == 'keep' and p.exists()
    (tmp_path/'sub').mkdir(); q = table(tmp_path/'sub')
    assert main(['date', str(q), '--target', 'species', '--out', str(tmp_path/'sub'), '--no-progress']) == 2
    assert 'holds the input' in capsys.readouterr().err and q.exists()


def test_overwrite_replaces_only_what_tabsynth_listed(tmp_path, capsys):
    p, t = table(tmp_path), template(tmp_path)
    args = ['hybrid', str(p), '--target', 'species', '--template', str(t), '--rows', '50', '--no-progress', '--out', str(tmp_path/'out')]
    assert main(args) == 0
    (tmp_path/'out'/'my_notes.txt').write_text('keep')
    assert main(args + ['--overwrite']) == 2 and 'only a folder with a tabsynth report.json' in capsys.readouterr().err
    assert (tmp_path/'out'/'my_notes.txt').read_text() == 'keep' and (tmp_path/'out'/'synthetic.csv').exists()


def test_a_failed_run_leaves_the_folders_of_others(tmp_path, capsys):
    from tabsynth.cli import staged_output
    with pytest.raises(RuntimeError):
        with staged_output(tmp_path/'results'/'a') as stage:
            (tmp_path/'results'/'b').mkdir(); (tmp_path/'results'/'b'/'done.txt').write_text('another run')
            raise RuntimeError('run a fails')
    assert (tmp_path/'results'/'b'/'done.txt').exists() and not (tmp_path/'results'/'a').exists()
    with pytest.raises(RuntimeError):
        with staged_output(tmp_path/'new'/'deeper'/'c'): raise RuntimeError
    assert not (tmp_path/'new').exists()


def test_os_errors_read_as_sentences(tmp_path, capsys):
    (tmp_path/'afile').write_text('x')
    err = fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species'], 'Not a directory', out='afile/sub')
    assert 'afile' in err


def test_parquet_index_is_kept_as_a_column(tmp_path):
    from tabsynth.cli import read_table
    PENGUINS.rename_axis('penguin_id').to_parquet(tmp_path/'p.parquet')
    assert read_table(tmp_path/'p.parquet').columns[0] == 'penguin_id'


def test_decimal_commas(tmp_path, capsys):
    p = tmp_path/'eu.csv'
    PENGUINS.to_csv(p, sep=';', decimal=',', index=False)
    fails(tmp_path, capsys, ['hybrid', str(p), '--target', 'species', '--template', str(template(tmp_path))], 'pass --decimal ,')
    assert main(['hybrid', str(p), '--target', 'species', '--decimal', ',', '--template', str(template(tmp_path)), '--rows', '50',
                 '--out', str(tmp_path/'out'), '--no-progress']) == 0
    assert json.loads((tmp_path/'out/schema.json').read_text())['columns'][2]['kind'] == 'numeric'


def test_llm_options_without_a_model_and_a_dead_server(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('OPENAI_MODEL', raising=False)
    fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species', '--llm-cache', str(tmp_path/'cache')], 'need --llm-model')
    err = fails(tmp_path, capsys, ['date', str(table(tmp_path)), '--target', 'species', '--llm-model', 'm', '--llm-base-url', 'http://127.0.0.1:9/v1'],
                'the LLM wrote no rows')
    assert 'cannot connect' in err


def test_evaluate_reads_tabsynths_own_output_beside_a_latin1_input(tmp_path, capsys):
    p = tmp_path/'latin.csv'
    PENGUINS.assign(island=PENGUINS.island.str.replace('Dream', 'Träume')).to_csv(p, index=False, encoding='latin-1')
    t = template(tmp_path)
    assert main(['hybrid', str(p), '--target', 'species', '--encoding', 'latin-1', '--template', str(t), '--rows', '80',
                 '--out', str(tmp_path/'h'), '--no-progress']) == 0
    assert main(['evaluate', str(p), str(tmp_path/'h/synthetic.csv'), '--target', 'species', '--encoding', 'latin-1',
                 '--out', str(tmp_path/'ev'), '--no-progress']) == 0


def test_privacy_guard_api_details():
    from tabsynth.hybrid import HybridSynthesizer, bottom_up
    with pytest.raises(ValueError, match='build it with allow_copies=True'):
        HybridSynthesizer({'name': 't', 'columns': {'species': {'values': ['Adelie']}}}, bottom_up('independent'), allow_copies=True).fit(PENGUINS)
