"""A push's ``.gitmodules`` and ``.gitattributes`` files: git's config syntax, submodule names and
URLs, and names a file system opens as a dotfile.  Every input is read to its end or refused with
``ConfigSyntaxError``; every check answers a plain yes or no, and a finding is reported with a
message id git's fsck knows."""

from __future__ import annotations

from backends import git_dotfiles, git_ingest

from .harness import Finding, Target


def run(data: bytes) -> None:
    findings: list[str] = []
    git_dotfiles.check_gitmodules(data, lambda msg_id, _message: findings.append(msg_id))
    git_dotfiles.check_gitattributes(data, lambda msg_id, _message: findings.append(msg_id))
    unknown = [msg_id for msg_id in findings if msg_id.lower() not in git_ingest.FSCK_MESSAGES]
    if unknown:
        raise Finding(f"a finding git's fsck has no id for: {unknown[0]}")
    for line in data.split(b"\n")[:8]:
        for verdict in (git_dotfiles.submodule_url_ok(line), git_dotfiles.submodule_name_ok(line)):
            if not isinstance(verdict, bool):
                raise Finding("a check answered something other than yes or no")
        normalized = git_dotfiles.url_normalize(line)
        if normalized is not None and any(byte < 0x21 or byte > 0x7E for byte in normalized):
            raise Finding(f"a normalised URL keeps a byte that needs escaping: {line[:80]!r}")
        git_dotfiles.dotfile_kinds(line)


def seeds() -> list[bytes]:
    return [
        b'[submodule "lib"]\n\tpath = lib\n\turl = https://example.com/lib.git\n',
        b'[submodule "../../x"]\n\turl = -u./p\n\tupdate = !sh\n\tpath = -p\n',
        b'\xef\xbb\xbf[submodule.x] url = "a\\"b" ; c\n[s "a\\\\b"]\nk\n',
        b"http://u:p@[::1]:0080/a/./b/../c?q=%0a#f\n./%0ahost=x\n../../:h\nGITMOD~1\n.git\xe2\x80\x8cmodules\n",
        b"*.c text\n" + b"x" * 2100 + b"\n",
    ]


TARGET = Target("git_dotfiles", run, seeds, max_size=8192)
