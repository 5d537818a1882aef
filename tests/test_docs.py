"""The documentation site, opened in a real browser (Debian's headless Chromium, driven by Playwright).

Every page must load with no console errors and no failed requests, every internal link must
resolve (file and anchor), and every public symbol of the package must have its API docs on its
page. Screenshots land in tests/artifacts/docs/.
"""
import functools, http.server, os, re, threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse
import pytest
from playwright.sync_api import Error as PlaywrightError

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT/'tests/artifacts/docs'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run']


class _Anchors(HTMLParser):
    "Collects element ids and link targets of a page."
    def __init__(self):
        super().__init__(); self.ids, self.links = set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('href') is not None: self.links.append(a['href'])


def _parse(path):
    p = _Anchors(); p.feed(path.read_text(encoding='utf-8')); return p


@pytest.fixture(scope='module')
def server(docs_site):
    "The site served over HTTP on localhost, as a reader's browser would see it."
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(docs_site))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown()


@pytest.fixture(scope='module')
def browser():
    exe = os.environ.get('TABSYNTH_CHROMIUM', '/usr/bin/chromium')   # the binary ./run test installs and checks for
    if not os.access(exe, os.X_OK):
        pytest.fail(f"Chromium is not installed at {exe}: `./run test` installs Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=FLAGS, headless=True)
        yield b
        b.close()


def test_site_has_a_page_per_notebook(docs_site):
    names = {p.name for p in docs_site.glob('*.html')}
    assert {'index.html', 'core.html', 'datasets.html', 'cli.html'} <= names
    notebooks = [p for p in (ROOT/'nbs').glob('*.ipynb')]
    assert len(names) == len(notebooks), (sorted(names), sorted(p.name for p in notebooks))
    assert 'class="highlight' in (docs_site/'core.html').read_text(), 'code cells are not syntax-highlighted'


def test_pages_load_without_errors(docs_site, server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = {}
    for page_file in sorted(docs_site.glob('*.html')):
        page = browser.new_page(viewport={'width': 1280, 'height': 900})
        errors = []
        page.on('console', lambda m, e=errors: e.append(f'console {m.type}: {m.text}') if m.type == 'error' else None)
        page.on('pageerror', lambda exc, e=errors: e.append(f'page error: {exc}'))
        page.on('requestfailed', lambda r, e=errors: e.append(f'request failed: {r.url}'))
        resp = page.goto(server + page_file.name, wait_until='load')
        assert resp is not None and resp.ok, f'{page_file.name}: HTTP {resp and resp.status}'
        assert page.title().endswith('tabsynth'), page.title()
        assert page.locator('nav.sidebar a.current').count() == 1, f'{page_file.name}: no current page in the sidebar'
        try: page.screenshot(path=str(SHOTS/f'{page_file.stem}.png'), full_page=True)
        except PlaywrightError:   # the screenshot is an artifact for people: a loaded machine can fail a 20,000-px capture, so keep the first screen
            page.screenshot(path=str(SHOTS/f'{page_file.stem}.png'))
        external = [r for r in page.evaluate('performance.getEntriesByType("resource").map(e => e.name)')
                    if not r.startswith(server) and not r.startswith('data:')]
        if external: errors.append(f'loads from the network: {external}')
        if errors: problems[page_file.name] = errors
        page.close()
    assert not problems, problems


def test_internal_links_resolve(docs_site):
    pages = {p.name: _parse(p) for p in docs_site.glob('*.html')}
    broken = []
    for name, parsed in pages.items():
        for href in parsed.links:
            url = urlparse(urljoin(f'http://site/{name}', href))
            if url.netloc != 'site': continue  # external (GitHub source links and the like)
            target = url.path.lstrip('/') or 'index.html'
            if target not in pages and not (docs_site/target).is_file(): broken.append(f'{name}: {href} (no {target})')
            elif url.fragment and target in pages and url.fragment not in pages[target].ids:
                broken.append(f'{name}: {href} (no #{url.fragment} in {target})')
    assert not broken, broken
    assert sum(len(p.links) for p in pages.values()) > 20


def _is_property(module, sym):
    "Is `sym` (module.Class.attr) a property? Properties are documented in prose, as in nbdev's own docs."
    import importlib, inspect
    parts = sym[len(module) + 1:].split('.')
    if len(parts) != 2: return False
    cls = getattr(importlib.import_module(module), parts[0])
    return isinstance(inspect.getattr_static(cls, parts[1]), property)


def test_api_docs_are_present(docs_site):
    "Every public function, class and method in the package index has its show_doc heading on the page the index points to."
    from tabsynth._modidx import d
    missing, found = [], 0
    for module, syms in d['syms'].items():
        for sym, (doc, _) in syms.items():
            if any(part.startswith('_') for part in sym[len(module) + 1:].split('.')) or _is_property(module, sym): continue  # private names and their methods
            page, _, anchor = doc.partition('#')
            path = docs_site/page
            if not path.is_file() or anchor not in _parse(path).ids: missing.append(f'{sym} -> {doc}')
            else: found += 1
    assert not missing, missing
    assert found >= 20
    core = (docs_site/'core.html').read_text()
    assert re.search(r'<h3 id="schema.infer">Schema.infer', core)
