"""The README's commands themselves (`./run`): their install checks look for real files, not for names.

A fresh machine once failed `./run test` because the script defined a shell function called `chromium`, so its
check `command -v chromium` always succeeded and Debian's package was never installed; CI stayed green only
because its machine already had Chromium. These tests keep that from coming back.
"""
import os, re, stat, subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = (ROOT/'run').read_text()


def _functions(script):
    return set(re.findall(r'^([A-Za-z_][A-Za-z0-9_]*)\s*\(\)\s*\{', script, flags=re.M))


def test_no_check_is_satisfied_by_the_scripts_own_names():
    "`command -v X`, `type X`, `which X` and `hash X` succeed for a function X: never check for a name `run` defines."
    defined = _functions(RUN)
    assert {'install_venv', 'ensure_chromium'} <= defined, defined
    checked = set(re.findall(r'\b(?:command\s+-v|type|which|hash)\s+"?([A-Za-z_][\w.-]*)', RUN))
    assert not (checked & defined), f'run checks for names it defines itself: {sorted(checked & defined)}'
    # nor does it shadow a command it or its tools might call
    assert not defined & {'chromium', 'install', 'pip', 'python', 'git', 'apt-get', 'sudo', 'test'}, defined


def _fake_bin(folder, name, body):
    p = folder/name
    p.write_text('#!/bin/sh\n' + body + '\n')
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def _ensure_chromium(tmp_path, chromium):
    "Runs run's ensure_chromium alone, with apt-get and sudo replaced by fakes that log their arguments."
    fakes = tmp_path/'bin'; fakes.mkdir(exist_ok=True)
    log = tmp_path/'apt.log'
    _fake_bin(fakes, 'apt-get', f'echo "$@" >> {log}; case "$*" in *install*chromium*) touch {chromium} 2>/dev/null && chmod +x {chromium};; esac; true')
    _fake_bin(fakes, 'sudo', '"$@"')
    func = re.search(r'^CHROMIUM=.*?^ensure_chromium\(\) \{.*?^\}', RUN, flags=re.M | re.S).group(0)
    env = {**os.environ, 'PATH': f'{fakes}:{os.environ["PATH"]}', 'TABSYNTH_CHROMIUM': str(chromium)}
    r = subprocess.run(['bash', '-c', f'set -euo pipefail\n{func}\nensure_chromium'], env=env, capture_output=True, text=True)
    return r, (log.read_text() if log.exists() else '')


def test_ensure_chromium_installs_when_the_binary_is_missing(tmp_path):
    chromium = tmp_path/'chromium'                 # does not exist: as on a fresh machine
    r, apt = _ensure_chromium(tmp_path, chromium)
    assert r.returncode == 0, r.stderr
    assert 'install -y -qq chromium' in apt, apt   # the package was asked for...
    assert chromium.exists()                       # ...and the check is for the file it provides
    assert 'installing Debian' in r.stdout


def test_ensure_chromium_does_nothing_when_the_binary_is_there(tmp_path):
    chromium = tmp_path/'chromium'; chromium.write_text(''); chromium.chmod(0o755)
    r, apt = _ensure_chromium(tmp_path, chromium)
    assert r.returncode == 0, r.stderr
    assert apt == ''


def test_ensure_chromium_fails_clearly_when_apt_provides_no_binary(tmp_path):
    chromium = tmp_path/'nowhere'/'chromium'       # apt-get's fake cannot create it
    r, apt = _ensure_chromium(tmp_path, chromium)
    assert r.returncode != 0
    assert 'did not provide' in r.stderr and str(chromium) in r.stderr
