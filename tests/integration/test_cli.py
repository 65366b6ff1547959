"""The plugin as an operator meets it: ``twistd hgwire`` from the command line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN

TWISTD = f"{VENV_BIN}/twistd"


def test_help_documents_every_option() -> None:
    result = subprocess.run([TWISTD, "hgwire", "--help"], capture_output=True, text=True, check=True)
    for option in ("--root", "--backend", "--ssh", "--http", "--git", "--host-key", "--authorized-keys",
                   "--htpasswd", "--config", "--host-cert", "--read-only", "--create-on-push", "--allow-push-over-http",
                   "--workers", "--shutdown-grace"):
        assert option in result.stdout


def test_help_says_the_defaults_and_rules_the_readme_says() -> None:
    """Where the host key is without ``--host-key``, what a ``--config`` file does to writes and
    git://, what ``--workers`` bounds (it said "requests served at once"; README: steps of disk and
    CPU work, the rest queue)."""
    result = subprocess.run([TWISTD, "hgwire", "--help"], capture_output=True, text=True, check=True)
    text = " ".join(result.stdout.split())
    assert "without the option ROOT/.ssh_host_ed25519_key" in text
    assert ("With one, pushes and creating need a rule that grants them (a repository no rule names is "
            "read-only) and git:// is read-only (nobody logs in there).") in text
    assert "at most this many such steps run at once, the rest queue" in text
    assert "requests served at once" not in text


def test_version_names_hgwire_s_own() -> None:
    """``twistd hgwire --version`` printed Twisted's version alone (usage.Options' own)."""
    import importlib.metadata

    from twisted import copyright

    result = subprocess.run([TWISTD, "hgwire", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout == f"hgwire {importlib.metadata.version('hgwire')} (Twisted {copyright.version})\n"


def test_unknown_backend_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path), "--backend", "nope",
                             "--git", "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--backend must be fs, memory or package.module:factory" in result.stdout + result.stderr


FAILING_FACTORIES = """
def typeerror(root):
    return len(root, root)

def valueerror(root):
    raise ValueError("the storage URL in STORAGE_URL is empty; set it")

def runtimeerror(root):
    raise RuntimeError("the cluster is down")

def oserror(root):
    open(root + "/missing/settings.toml")

def importerror(root):
    import no_such_dependency

def no_root():
    pass
"""


@pytest.mark.parametrize("factory, said", [
    ("typeerror", "cannot start backend 'failing_backends:typeerror': TypeError: len() takes exactly one argument"),
    ("valueerror", ("cannot start backend 'failing_backends:valueerror': "
                    "ValueError: the storage URL in STORAGE_URL is empty; set it")),
    ("runtimeerror", "cannot start backend 'failing_backends:runtimeerror': RuntimeError: the cluster is down"),
    ("oserror", "cannot start backend 'failing_backends:oserror': FileNotFoundError: [Errno 2]"),
    ("importerror", ("cannot start backend 'failing_backends:importerror': "
                     "ModuleNotFoundError: No module named 'no_such_dependency'")),
    ("no_root", "backend factory 'failing_backends:no_root' must take the root directory"),
])
def test_a_failing_backend_factory_is_one_line_naming_it(tmp_path: Path, factory: str, said: str) -> None:
    """Whatever a custom backend's factory raises, the operator reads one line naming the backend and
    the error (with where a bug was raised), never a traceback nor a guess that it takes no root."""
    (tmp_path / "failing_backends.py").write_text(FAILING_FACTORIES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path / "root"), "--backend",
                             f"failing_backends:{factory}", "--git", "tcp:0:interface=127.0.0.1"],
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip()
    assert said in output and "\n" not in output and "Traceback" not in output, output
    if factory in ("typeerror", "runtimeerror", "importerror"):  # a bug in the factory: where it is
        assert "failing_backends.py:" in output, output


BROKEN_MODULES = {
    "syntax_backend": "def make(root)\n    return None\n",
    "dependency_backend": "import no_such_dependency_of_a_backend\n\ndef make(root):\n    return None\n",
    "setting_backend": "import os\nSETTING = os.environ['NO_SUCH_BACKEND_SETTING']\n\ndef make(root):\n    return None\n",
    "spelt_backend": "def make_backend(root):\n    return None\n",
    "misfit_backend": ("class B:\n    def open(self):\n        pass\n    def create(self, name):\n        pass\n"
                       "    def exists(self, name):\n        pass\n    def list(self):\n        return []\n"
                       "    def locate(self, name, kind):\n        pass\n\ndef make(root):\n    return B()\n"),
}


@pytest.mark.parametrize("spec, said", [
    ("syntax_backend:make", "cannot load backend 'syntax_backend:make': SyntaxError: expected ':' (at {dir}/syntax_backend.py:1)"),
    ("dependency_backend:make", ("cannot load backend 'dependency_backend:make': ModuleNotFoundError: No module named "
                                 "'no_such_dependency_of_a_backend' (raised at {dir}/dependency_backend.py:1, in <module>)")),
    ("setting_backend:make", ("cannot load backend 'setting_backend:make': KeyError: 'NO_SUCH_BACKEND_SETTING' "
                              "(raised at {dir}/setting_backend.py:2, in <module>)")),
    ("spelt_backen:make_backend", ("cannot load backend 'spelt_backen:make_backend': No module named 'spelt_backen'; "
                                   "check its spelling and that its directory is on PYTHONPATH")),
    ("spelt_backend:make_backnd", ("cannot load backend 'spelt_backend:make_backnd': module 'spelt_backend' has no "
                                   "attribute 'make_backnd'; did you mean spelt_backend:make_backend?")),
    ("spelt_backend.py:make_backend", "name a module by its dotted path (package.module), not a file"),
    ("spelt_backend.make_backend", ("--backend parts the module from its factory with a colon (package.module:factory): "
                                    "did you mean spelt_backend:make_backend?")),
    ("misfit_backend:make", ("backend 'misfit_backend:make' cannot be called as hgwire calls it: open(name), "
                             "create(name, kind), locate(name); see the README's backend section")),
])
def test_a_backend_module_that_does_not_import_is_one_line_naming_it(tmp_path: Path, spec: str, said: str) -> None:
    """A backend module with a syntax error, a missing dependency or an exception at module level was
    a traceback of twistd's option parsing (a syntax error), or a "No module named" that read as the
    backend's own module missing: now one line naming the file and line, as for a failing factory.
    A backend whose methods cannot take hgwire's arguments is told at the start too, not per request."""
    for name, source in BROKEN_MODULES.items():
        (tmp_path / f"{name}.py").write_text(source)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    env.pop("NO_SUCH_BACKEND_SETTING", None)
    result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path / "root"), "--backend", spec,
                             "--git", "tcp:0:interface=127.0.0.1"],
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip()
    assert said.format(dir=tmp_path) in output and "\n" not in output and "Traceback" not in output, output


def test_workers_must_be_a_sensible_count(tmp_path: Path) -> None:
    for bad in ("0", "many", "100000"):
        result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path), "--workers", bad,
                                 "--git", "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert "--workers must be a whole number from 1 to 256" in result.stdout + result.stderr


def test_shutdown_grace_must_be_a_sensible_number(tmp_path: Path) -> None:
    for bad in ("-1", "soon", "nan", "1e9"):
        result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path), "--shutdown-grace", bad,
                                 "--git", "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert "--shutdown-grace must be a number of seconds from 0 to 86400" in result.stdout + result.stderr


def test_a_host_certificate_without_an_ssh_listener_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path), "--host-cert", str(tmp_path / "c"),
                             "--git", "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode != 0
    assert "--host-cert is for the SSH listener: add --ssh ENDPOINT" in result.stdout + result.stderr


def test_unusable_host_keys_are_a_clear_error(tmp_path: Path) -> None:
    """One sentence that says what to do, no traceback, and no byte of a file that is not a key."""
    key = tmp_path / "ssh_host_ed25519_key"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "secret.txt").write_text("do not print me\n")
    locked = tmp_path / "locked_key"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(locked)], check=True)
    for args, words in ([["--host-key", str(key), "--host-key", str(key)], "is a second ssh-ed25519 host key"],
                        [["--host-key", str(locked)], (f"host key {locked} is encrypted with a passphrase, which "
                                                       f"hgwire cannot be given: remove the passphrase (ssh-keygen "
                                                       f"-p -N '' -f {locked})")],
                        [["--host-key", str(key), "--host-key", str(tmp_path / "nope")], "does not exist: make it"],
                        [["--host-key", str(tmp_path / "secret.txt")], "is not an ed25519, RSA or ECDSA private key"]):
        result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path / "root"), *args,
                                 "--ssh", "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60,
                                check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0 and words in output, output
        assert "Traceback" not in output and "do not print me" not in output, output
        assert output.strip().count("\n") == 0 and "Usage:" not in output, "one line, not twistd's usage text"


def test_a_host_key_others_may_read_is_warned_of(tmp_path: Path) -> None:
    """sshd refuses a host key of mode 0644 ("UNPROTECTED PRIVATE KEY FILE"); hgwire serves with it,
    as it did, and says at the start what to do."""
    key = tmp_path / "ssh_host_ed25519_key"
    subprocess.run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    key.chmod(0o644)
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(tmp_path / "repos"), "--host-key",
                             str(key), "--ssh", "tcp:0:interface=127.0.0.1"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = "".join(read_log(proc, r"worker threads"))
    finally:
        stop_twistd(proc)
    assert (f"SSH host key {key} is open to other users (mode 0644): whoever reads it can pose as this server; "
            f"chmod 600 {key}") in seen, seen
    assert "hgwire serves ssh at" in seen, seen


def test_a_port_it_cannot_have_stops_it_with_one_line_and_status_1(tmp_path: Path) -> None:
    """As git daemon: a listener that cannot listen ends the process with exit status 1 (an init
    system sees the failure) and a line that says why and what to do, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for endpoint, words in ((f"tcp:{port}:interface=127.0.0.1", "Address already in use; stop what uses that port"),
                                ("tcp:notaport", "the port 'notaport' is not a number from 0 to 65535"),
                                (f"unix:{tmp_path}/nodir/x.sock",
                                 ("No such file or directory; check that the socket's directory exists"))):
            result = subprocess.run([TWISTD, "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path),
                                     "--git", endpoint], capture_output=True, text=True, timeout=60, check=False)
            output = result.stdout + result.stderr
            assert result.returncode == 1, output
            assert f"cannot listen on {endpoint}: " in output and words in output, output
            assert "Traceback" not in output, output


def test_a_key_that_is_not_the_certificate_s_is_one_line_and_status_1(tmp_path: Path) -> None:
    """privateKey= and certKey= of two pairs: the line said "check the endpoint description, e.g.
    tcp:2222…" and a VerifyError traceback followed.  Now one line that names the two files."""
    pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")
    from tests.integration.test_hg_http import _tls_files

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _, key, _ = _tls_files(tmp_path / "one")
    _, _, cert = _tls_files(tmp_path / "two")
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    result = subprocess.run([TWISTD, "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path / "repos"),
                             "--http", endpoint], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (f"cannot listen on {endpoint}: the private key does not belong to the certificate; check that "
            "privateKey= and certKey= name the key and certificate of one pair") in output, output
    assert "Traceback" not in output and "VerifyError" not in output and "hgwire serves" not in output, output


def test_endpoint_mistakes_are_one_line_each_without_internals(tmp_path: Path) -> None:
    """An IPv6 interface with its colons unescaped, a port past 65535 or not a number, an ssl: key
    without certKey= or files that are not PEM: each listener's line says which and what to write,
    not Twisted's or OpenSSL's internals (``_parseTCP() got multiple values``, ``bind(): port must
    be 0-65535.``, ``[('PEM routines', '', 'no start line')]``) and a traceback."""
    pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")
    from tests.integration.test_hg_http import _tls_files

    _, key, cert = _tls_files(tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(os.urandom(300))
    told = {
        "tcp:0:interface=::1": r"the IPv6 address in interface= is cut at its first colon; escape each colon: "
                               r"interface=\:\:1",
        "tcp:99999": "the port '99999' is not a number from 0 to 65535; write the port as a number",
        "tcp:abc": "the port 'abc' is not a number from 0 to 65535; write the port as a number",
        f"ssl:0:interface=127.0.0.1:privateKey={key}": (f"{key} holds no certificate, and without certKey= the "
                                                        "certificate is read from the privateKey= file; add certKey= "
                                                        "naming the server's certificate (PEM)"),
        f"ssl:0:interface=127.0.0.1:privateKey={garbage}:certKey={cert}": (
            f"{garbage} holds no PEM private key without a passphrase; check that privateKey= names the "
            "server's private key"),
        f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={garbage}": (
            f"{garbage} holds no PEM certificate; check that certKey= names the server's certificate"),
    }
    listeners = [arg for endpoint in told for arg in ("--http", endpoint)]
    result = subprocess.run([TWISTD, "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path / "repos"), *listeners],
                            capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    for endpoint, words in told.items():
        assert f"cannot listen on {endpoint}: {words}" in output, (endpoint, output)
    for internal in ("Traceback", "routines", "_parseTCP", "bind()", "invalid literal", "hgwire serves"):
        assert internal not in output, output


def test_two_of_its_own_listeners_on_one_port_are_named_before_either_binds(tmp_path: Path) -> None:
    """``--git tcp:P --http tcp:P``: the second said "Address already in use; stop what uses that
    port", after the first had logged that it serves; now one line names both, and nothing binds."""
    port = _free_port()
    git, web = f"tcp:{port}:interface=127.0.0.1", f"tcp:{port}"
    result = subprocess.run([TWISTD, "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path / "repos"), "--git", git,
                             "--http", web], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.strip() == (f"twistd hgwire: --git {git} and --http {web} both listen on port {port}: give each "
                              "listener a port of its own"), output


def test_an_interface_that_is_no_address_is_told_so(tmp_path: Path) -> None:
    endpoint = f"tcp:{_free_port()}:interface=nonsense.invalid"
    result = subprocess.run([TWISTD, "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path / "repos"), "--git",
                             endpoint], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (f"cannot listen on {endpoint}: interface=nonsense.invalid is not an address and cannot be resolved ("
            in output and "; check the interface= address: it must be one of this host's" in output), output
    assert "stop what uses that port" not in output and "Traceback" not in output, output


def test_an_encrypted_key_is_one_line_not_a_passphrase_prompt(tmp_path: Path) -> None:
    """A passphrase-protected key: OpenSSL asked "Enter PEM pass phrase:" on stderr (twice, with no
    terminal), then the listener failed with nine OpenSSL tuples.  Now one line says how to
    decrypt it, before Twisted reads it."""
    pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")
    from tests.integration.test_hg_http import _tls_files

    _, key, cert = _tls_files(tmp_path)
    encrypted = tmp_path / "encrypted.pem"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-out", str(encrypted), "-aes256", "-passout", "pass:secret"],
                   check=True)
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={encrypted}:certKey={cert}"
    result = subprocess.run([TWISTD, "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path / "repos"),
                             "--http", endpoint], capture_output=True, text=True, timeout=60, check=False,
                            stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (f"cannot listen on {endpoint}: the private key in {encrypted} is encrypted with a passphrase; "
            f"hgwire needs it without one: openssl pkey -in {encrypted} -out NEWKEY") in output, output
    assert "pass phrase" not in output and "Traceback" not in output and "hgwire serves" not in output, output


def test_two_ports_it_cannot_have_are_two_lines_and_nothing_more(tmp_path: Path) -> None:
    """Each listener says why it cannot listen; the process stops once (a second stop was a
    ``ReactorNotRunning`` traceback) and does not claim to serve."""
    with socket.socket() as one, socket.socket() as two:
        for taken in (one, two):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        endpoints = [f"tcp:{s.getsockname()[1]}:interface=127.0.0.1" for s in (one, two)]
        result = subprocess.run([TWISTD, "-n", "--pidfile", "", "hgwire", "--root", str(tmp_path), "--git", endpoints[0],
                                 "--http", endpoints[1]], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert all(f"cannot listen on {endpoint}: Address already in use" in output for endpoint in endpoints), output
    assert "Traceback" not in output and "ReactorNotRunning" not in output and "hgwire serves" not in output, output


def test_a_root_it_cannot_make_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path / "file" / "repos"),
                             "--git", "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60,
                            check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "cannot be made (Not a directory); give a directory" in output, output
    assert "Traceback" not in output and "Usage:" not in output, output


def test_a_root_that_is_a_file_is_told_so(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path / "file"), "--git",
                             "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.strip() == (f"twistd hgwire: --root {tmp_path / 'file'} is not a directory; give the directory of "
                              "the repositories (made if missing)"), output  # it said "cannot be made (File exists)"


def test_file_options_without_their_listener_are_warned_of(tmp_path: Path) -> None:
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(tmp_path / "repos"), "--git",
                             "tcp:0:interface=127.0.0.1", "--htpasswd", str(tmp_path / "passwords"),
                             "--authorized-keys", str(tmp_path / "keys"), "--host-key", str(tmp_path / "host_key")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = "".join(read_log(proc, r"worker threads"))
    finally:
        stop_twistd(proc)
    for name, option in (("htpasswd", "--http"), ("authorized-keys", "--ssh"), ("host-key", "--ssh")):
        assert (f"--{name} has no effect without an {option} listener: add {option} ENDPOINT, or leave --{name} "
                "out") in seen, seen
    assert "hgwire serves git at" in seen and not (tmp_path / "host_key").exists(), seen


def test_the_worker_pool_has_the_size_asked_for(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(tmp_path / "repos"), "--workers",
                             "3", "--git", f"tcp:{port}:interface=127.0.0.1"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "worker threads" in line or not line:
                break
        assert "with the FilesystemBackend backend and 3 worker threads" in line, line
    finally:
        stop_twistd(proc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_log(proc: subprocess.Popen[str], until: str, seconds: float = 30) -> list[str]:
    """The lines the process logs up to the first matching the pattern ``until`` (or its end)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + seconds
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if re.search(until, line) or (not line and proc.poll() is not None):
            break
    return seen


def start_twistd(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``twistd -n hgwire ARGS`` and wait for the first URL it logs."""
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = read_log(proc, r"hgwire serves \w+ at \S+")
    match = re.search(r"hgwire serves \w+ at (\S+)", seen[-1])
    if match:
        return proc, match.group(1)
    proc.kill()
    raise AssertionError("twistd hgwire did not log a URL:\n" + "".join(seen))


def stop_twistd(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_runs_and_logs_clone_url(tmp_path: Path) -> None:
    port = _free_port()
    proc, url = start_twistd(["--root", str(tmp_path / "repos"), "--git", f"tcp:{port}:interface=127.0.0.1"],
                             tmp_path)
    try:
        assert url == f"git://127.0.0.1:{port}/NAME.git"
        assert (tmp_path / "repos").is_dir()
    finally:
        stop_twistd(proc)


def _port_free(port: int) -> bool:
    """Whether a listener could take the port (as Twisted's do, with SO_REUSEADDR: connections of an
    earlier server still in TIME_WAIT do not hold it)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_make_serve_default_serves_repositories_and_git_clones(tmp_path: Path, client_env: dict[str, str]) -> None:
    """What ``make serve`` runs: ``twistd -n hgwire`` with no options, in a fresh directory."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "$(VENV)/bin/twistd -n hgwire\n" in makefile
    for port in (9418, 2222, 8080):
        assert _port_free(port), f"port {port} is taken; the default listeners of `make serve` need it"
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "repositories" / "demo.git")], check=True)
    seed = tmp_path / "seed"
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True, env=client_env)
    (seed / "README").write_text("hello\n")
    subprocess.run(["git", "-C", str(seed), "add", "README"], check=True, env=client_env)
    subprocess.run(["git", "-C", str(seed), "commit", "-qm", "first"], check=True, env=client_env)
    proc, url = start_twistd([], tmp_path)
    try:
        assert url.startswith("git://127.0.0.1:9418/")
        demo = "git://127.0.0.1:9418/demo.git"
        subprocess.run(["git", "-C", str(seed), "push", "-q", demo, "main"], check=True, env=client_env, timeout=60)
        subprocess.run(["git", "clone", "-q", demo, str(tmp_path / "clone")], check=True, env=client_env, timeout=60)
        assert (tmp_path / "clone" / "README").read_text() == "hello\n"
    finally:
        stop_twistd(proc)


def test_the_limit_on_open_descriptors_is_raised_at_the_start(tmp_path: Path) -> None:
    """Under a service manager's common soft limit of 1,024, a few hundred concurrent clones would
    run out of descriptors: hgwire raises its own toward the hard limit."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip(f"the hard limit here is {hard}: nothing to raise to")
    port = _free_port()
    command = (f'ulimit -Sn 1024 && exec "{TWISTD}" -n --pidfile= hgwire --root "{tmp_path / "repos"}" '
               f"--git tcp:{port}:interface=127.0.0.1")
    proc = subprocess.Popen(["sh", "-c", command], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        seen = read_log(proc, "worker threads")
        assert any("raised the limit on open descriptors from 1024 to" in line for line in seen), seen
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        (row,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
        expected = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        assert int(row.split()[3]) == expected, row
    finally:
        stop_twistd(proc)


def test_a_sighup_without_a_config_file_is_logged_not_fatal(tmp_path: Path) -> None:
    """An operator's habitual ``kill -HUP`` (a unit's ``ExecReload=``) ended the process at once when
    there was no ``--config`` file to read again."""
    port = _free_port()
    proc, _url = start_twistd(["--root", str(tmp_path / "repos"), "--git", f"tcp:{port}:interface=127.0.0.1"],
                              tmp_path)
    try:
        read_log(proc, r"hgwire serves repositories")
        proc.send_signal(signal.SIGHUP)
        said = read_log(proc, r"SIGHUP: there is no --config file", seconds=15)
        assert "SIGHUP: there is no --config file or ssl: listener to read again" in said[-1], said
        assert proc.poll() is None, "still serving"
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
    finally:
        stop_twistd(proc)


def _served_certificate(port: int) -> bytes:
    """The certificate an ``ssl:`` listener on ``port`` sends a new connection (DER)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        served = tls.getpeercert(binary_form=True)
    assert served is not None
    return served


def test_a_sighup_reads_a_renewed_certificate_and_a_broken_one_keeps_the_old(tmp_path: Path) -> None:
    """A renewed certificate (certbot's, written over the files) was served only after a restart:
    SIGHUP said "there is no --config file to read again".  Now SIGHUP reads the ``ssl:``
    listener's files again for the connections after it; a pair that does not go together is
    logged and the one in use kept."""
    pytest.importorskip("OpenSSL", reason="ssl: endpoints need pyOpenSSL (twisted[tls])")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from tests.integration.test_hg_http import _tls_files

    for pair in ("one", "two", "three"):
        (tmp_path / pair).mkdir()
        _tls_files(tmp_path / pair)
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_bytes((tmp_path / "one" / "key.pem").read_bytes())
    cert.write_bytes((tmp_path / "one" / "cert.pem").read_bytes())

    def der(pair: str) -> bytes:
        pem = x509.load_pem_x509_certificate((tmp_path / pair / "cert.pem").read_bytes())
        return pem.public_bytes(serialization.Encoding.DER)

    port = _free_port()
    endpoint = f"ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    proc, _url = start_twistd(["--root", str(tmp_path / "repos"), "--http", endpoint], tmp_path)
    try:
        read_log(proc, r"hgwire serves repositories")
        assert _served_certificate(port) == der("one")
        key.write_bytes((tmp_path / "two" / "key.pem").read_bytes())
        cert.write_bytes((tmp_path / "two" / "cert.pem").read_bytes())
        proc.send_signal(signal.SIGHUP)
        said = read_log(proc, r"read again", seconds=15)
        assert f"{endpoint}: certificate and key read again; new connections get them" in said[-1], said
        assert _served_certificate(port) == der("two")
        cert.write_bytes((tmp_path / "three" / "cert.pem").read_bytes())  # the key is still two's
        proc.send_signal(signal.SIGHUP)
        said = read_log(proc, r"read again", seconds=15)
        assert (f"{endpoint}: the certificate and key were not read again: the private key does not belong to "
                "the certificate;") in said[-1] and "goes on with the ones it had" in said[-1], said
        assert _served_certificate(port) == der("two")
        assert proc.poll() is None, "still serving"
    finally:
        stop_twistd(proc)


def test_a_listener_on_every_address_says_so_and_names_the_host_not_localhost(tmp_path: Path) -> None:
    """``interface=\\:\\:`` binds every address: the start line's URL names this machine (as
    ``hg serve`` does), never ``localhost``, and says which addresses and port it listens on."""
    port, other = _free_port(), _free_port()
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "hgwire", "--root", str(tmp_path / "repos"),
                             "--http", f"tcp:{port}:interface=\\:\\:", "--git", f"tcp:{other}"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = "".join(read_log(proc, r"worker threads"))
    finally:
        stop_twistd(proc)
    host = socket.gethostname()
    assert (f"hgwire serves http at http://{host}:{port}/NAME (listening on every IPv6 and IPv4 address, "
            f"port {port})") in seen, seen
    assert f"hgwire serves git at git://{host}:{other}/NAME.git (listening on every IPv4 address, port {other})" \
        in seen, seen
    assert "localhost" not in seen, seen


def test_log_size_must_be_a_size(tmp_path: Path) -> None:
    for bad in ("-1", "10T", "1.5M"):
        result = subprocess.run([TWISTD, "-n", "hgwire", "--root", str(tmp_path), "--log-size", bad,
                                 "--git", "tcp:0:interface=127.0.0.1"], capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode != 0
        assert ("--log-size must be a whole number of bytes, 0 or more, optionally with K, M or G (10M), "
                f"not {bad!r}") in result.stdout + result.stderr
