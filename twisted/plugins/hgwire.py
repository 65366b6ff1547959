"""twistd plugin glue: ``twistd -n hgwire --help``.  Only options -> service."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService, IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer

LISTENER_HELP = ("a Twisted server endpoint, e.g. tcp:{port}:interface=127.0.0.1 (repeatable); "
                 "haproxy:tcp:{port} behind a proxy that sends the PROXY protocol")


class Options(usage.Options):
    """Options of ``twistd hgwire``; any listener option replaces the default listeners."""

    synopsis = "[options]"
    longdesc = (
        "Serve the Git and Mercurial repositories under --root over git://, SSH and HTTP. "
        "Without listener options it serves git:// on 127.0.0.1:9418 (and SSH on 2222, "
        "HTTP on 8080 where available) and logs the clone URLs."
    )
    optParameters = [
        ["root", "r", "repositories", "Directory of repositories (created if missing)."],
        ["backend", "b", "fs", "Storage: fs | memory | package.module:factory."],
        ["authorized-keys", None, None, "OpenSSH authorized_keys file of users who may log in over SSH."],
        ["htpasswd", None, None, "Password file (bcrypt hashes) for HTTP Basic authentication."],
        ["config", "c", None, ("TOML file with users, groups, repository rules and limits. With one, pushes "
                               "and creating need a rule that grants them (a repository no rule names is "
                               "read-only) and git:// is read-only (nobody logs in there).")],
        ["workers", None, "8", ("Worker threads for disk and CPU work (pack and bundle generation, push "
                                "ingest): at most this many such steps run at once, the rest queue.")],
        ["shutdown-grace", None, "30", "Seconds open connections get to finish when the service stops "
                                       "(SIGTERM, SIGINT); 0 closes them at once."],
        ["log-size", None, "1000000", ("Bytes at which twistd's --logfile FILE is rotated to FILE.1 (FILE.1 to "
                                       "FILE.2...), or K, M, G of them (10M); 0 never by size (logrotate's job).")],
        ["log-keep", None, "0", ("Rotated --logfile files kept (FILE.1 to FILE.N), older ones deleted at each "
                                 "rotation; 0 keeps every one, as twistd does.")],
    ]
    optFlags = [
        ["read-only", None, "Refuse every write on every transport."],
        ["create-on-push", None, "Create a repository when an authorised user pushes to a new name."],
        ["allow-push-over-http", None, "Allow Mercurial pushes over plain (non-TLS) HTTP."],
    ]

    def __init__(self) -> None:
        super().__init__()
        for kind in ("git", "ssh", "http", "host-key", "host-cert"):
            self[kind] = []

    def opt_git(self, endpoint: str) -> None:
        self["git"].append(endpoint)

    def opt_ssh(self, endpoint: str) -> None:
        self["ssh"].append(endpoint)

    def opt_http(self, endpoint: str) -> None:
        self["http"].append(endpoint)

    def opt_host_key(self, path: str) -> None:
        """SSH host key file (generated as ed25519 if missing; without the option
        ROOT/.ssh_host_ed25519_key); repeat for keys of other types."""
        self["host-key"].append(path)

    def opt_host_cert(self, path: str) -> None:
        """SSH host certificate of a host key (besides HOST_KEY-cert.pub when it exists); may repeat."""
        self["host-cert"].append(path)

    def opt_version(self) -> None:
        """Display hgwire's and Twisted's versions and exit."""
        import importlib.metadata

        from twisted import copyright

        try:
            version = importlib.metadata.version("hgwire")
        except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
            version = "(not installed)"
        print(f"hgwire {version} (Twisted {copyright.version})")
        raise SystemExit(0)

    opt_git.__doc__ = "Serve git:// on " + LISTENER_HELP.format(port=9418)
    opt_ssh.__doc__ = "Serve SSH (git and hg) on " + LISTENER_HELP.format(port=2222)
    opt_http.__doc__ = "Serve HTTP (git smart HTTP and hg) on " + LISTENER_HELP.format(port=8080)

    def parseOptions(self, options: Any = None) -> None:
        import sys

        from gateway.options import misspelt_option

        wrong = misspelt_option(sys.argv[1:] if options is None else options, self.longOpt)
        if wrong is not None:  # one line, not twistd's whole usage text above it
            raise SystemExit(f"twistd hgwire: {wrong}")
        super().parseOptions(options)  # type: ignore[no-untyped-call]

    def postOptions(self) -> None:
        from gateway.options import check_options

        try:
            check_options(self)
        except ValueError as exc:  # one line that says what to do, not twistd's whole usage text above it
            raise SystemExit(f"twistd hgwire: {exc}") from None


@implementer(IServiceMaker, IPlugin)
class HgwireServiceMaker:
    tapname = "hgwire"
    description = "Git and Mercurial hosting over git://, SSH and HTTP(S)"
    options = Options

    def makeService(self, options: Any) -> IService:
        from gateway.service import make_service

        return make_service(options)


service_maker = HgwireServiceMaker()
