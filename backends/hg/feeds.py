"""hgweb's feeds, which feed readers and notification bots subscribe to: ``atom-log`` and
``rss-log`` (the newest ``[web] maxchanges`` changesets), ``atom-tags``/``rss-tags``,
``atom-bookmarks``/``rss-bookmarks`` and ``atom-branches``/``rss-branches``, written as
``hg serve`` writes them (its ``atom`` and ``rss`` styles), over what pulls can see.

The feed names the repository by its hgwire name, or its hgrc's ``[web] name`` when set (as
hgweb), and links under ``url`` (the repository's own URL, ending in ``/``); a changeset's author
is written as hgweb writes it (its name, and the whole author as numeric character references).  Blocking (revlog reads).
"""

from __future__ import annotations

import binascii
import datetime
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from backends.hg import web
from backends.hg.changelog import Changeset
from backends.hg.repository import HgRepo

FEEDS = web.FEEDS
MAX_FILES = 10
"""hgweb's default ``[web] maxfiles``: files a feed entry lists."""


def escape(text: bytes) -> bytes:
    """hg's ``escape`` filter: ``&``, ``<``, ``>`` and ``"`` as entities, NUL bytes left out."""
    return (text.replace(b"\0", b"").replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
            .replace(b'"', b"&quot;"))


def obfuscate(text: bytes) -> bytes:
    """hg's ``obfuscate`` filter: every character as a numeric character reference."""
    return b"".join(b"&#%d;" % ord(ch) for ch in text.decode("utf-8", "replace"))


def person(author: bytes) -> bytes:
    """hg's ``person`` filter: the name before an address (``Ann <a@x>``, ``"Ann" <a@x>``, ``a.b@x``)."""
    if b"@" not in author:
        return author
    at = author.find(b"<")
    if at != -1:
        return author[:at].strip(b' "').replace(b'\\"', b'"')
    return author[:author.find(b"@")].replace(b".", b" ")


def email(author: bytes) -> bytes:
    """hg's ``email`` filter: what is between ``<`` and ``>`` (or the whole author)."""
    end = author.find(b">")
    return author[author.find(b"<") + 1:end if end != -1 else None]


def first_line(text: bytes) -> bytes:
    cut = text.find(b"\n")
    if cut != -1:
        text = text[:cut]
    lines = text.splitlines()
    return lines[0] if lines else b""


def _date(changeset_time: float, tz: int, pattern: str, colon: bool) -> bytes:
    """hg's ``rfc3339date`` (``colon``) and ``rfc822date``: the local time of the change and its offset."""
    sign = "-" if tz > 0 else "+"
    minutes = abs(tz) // 60
    offset = f"{sign}{minutes // 60:02d}{':' if colon else ''}{minutes % 60:02d}"
    seconds = max(min(int(changeset_time) - tz, 0x7FFFFFFF), -0x80000000)
    local = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=seconds)
    return (local.strftime(pattern) + offset).encode()


def rfc3339(changeset: Changeset | None) -> bytes:
    when, tz = (changeset.time, changeset.tz) if changeset is not None else (0, 0)
    return _date(when, tz, "%Y-%m-%dT%H:%M:%S", True)


def rfc822(changeset: Changeset | None) -> bytes:
    when, tz = (changeset.time, changeset.tz) if changeset is not None else (0, 0)
    return _date(when, tz, "%a, %d %b %Y %H:%M:%S ", False)


def feed(repo: HgRepo, name: str, page: str, url: str) -> bytes:
    """Feed ``page`` (one of ``FEEDS``) of repository ``name`` whose URL is ``url``."""
    style, _, kind = page.partition("-")
    writer = {"log": _log, "tags": _tags, "bookmarks": _bookmarks, "branches": _branches}[kind]
    return writer(repo, escape(name.encode("utf-8", "surrogateescape")), quote(url, safe="/:@").encode(), style)


def _header(url: bytes, style: str) -> bytes:
    if style == "atom":
        return b'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
    return (b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0">\n  <channel>\n    <link>%s</link>\n'
            b"    <language>en-us</language>\n" % url)


def _short(node: bytes) -> bytes:
    return binascii.hexlify(node)[:12]


def _log(repo: HgRepo, name: bytes, url: bytes, style: str) -> bytes:
    info = web._Changesets(repo)
    max_files = web.web_int(repo, b"maxfiles", MAX_FILES)
    entries = [(rev, repo.changeset(info.cl, rev))
               for rev in info.recent(info.tip_rev, web.web_int(repo, b"maxchanges", web.MAX_CHANGES))]
    tips = branch_at_tip(repo)
    out = [_header(url, style)]
    if style == "atom":
        updated = b"<updated>%s</updated>" % rfc3339(entries[0][1]) if entries else b""
        out.append(b'\n <!-- Changelog -->\n <id>%s</id>\n <link rel="self" href="%satom-log"/>\n'
                   b' <link rel="alternate" href="%s"/>\n <title>%s Changelog</title>\n %s\n\n'
                   % (url, url, url, name, updated))
    else:
        out.append(b"\n    <title>%s Changelog</title>\n    <description>%s Changelog</description>\n    "
                   % (name, name))
    for rev, changeset in entries:
        out.append(_log_entry(info, rev, changeset, url, style, tips, max_files))
    out.append(b"\n</feed>\n" if style == "atom" else b"\n  </channel>\n</rss>")
    return b"".join(out)


def file_feed(repo: HgRepo, name: str, page: str, key: str, url: str) -> bytes:
    """``atom-log/REV/PATH`` or ``rss-log/REV/PATH``: a file's history as a feed, the entries of
    ``json-filelog`` (``[web] maxshortchanges`` file revisions from REV down)."""
    style = page.partition("-")[0]
    revision, _, path = key.partition("/")
    wanted = path.strip("/").encode("utf-8", "surrogateescape")
    info = web._Changesets(repo)
    revs = web.file_history(repo, info, revision or "tip", wanted, None)
    repo_name, link = escape(name.encode("utf-8", "surrogateescape")), quote(url, safe="/:@").encode()
    shown, quoted = escape(wanted), quote(wanted, safe="/").encode()
    entries = [(rev, repo.changeset(info.cl, rev)) for rev, _file_node in revs]
    out = [_header(link, style)]
    if style == "atom":
        updated = b"<updated>%s</updated>" % rfc3339(entries[0][1]) if entries else b""
        out.append(b'\n <id>%satom-log/tip/%s</id>\n <link rel="self" href="%satom-log/tip/%s"/>\n'
                   b" <title>%s: %s history</title>\n %s\n\n" % (link, shown, link, quoted, repo_name, shown, updated))
        tips = branch_at_tip(repo)
        out += [_log_entry(info, rev, changeset, link, style, tips, -1) for rev, changeset in entries]
        out.append(b"\n</feed>\n")
        return b"".join(out)
    out.append(b"\n    <title>%s: %s history</title>\n    <description>%s revision history</description>\n    "
               % (repo_name, shown, shown))
    for rev, changeset in entries:
        out.append(b"<item>\n    <title>%s</title>\n    <link>%slog/%s/%s</link>\n"
                   b"    <description><![CDATA[%s]]></description>\n    <author>%s</author>\n"
                   b"    <pubDate>%s</pubDate>\n</item>\n"
                   % (escape(first_line(changeset.description.strip()).strip()), link,
                      _short(info.cl.node(rev)), quoted, _description(changeset), obfuscate(changeset.user),
                      rfc822(changeset)))
    out.append(b"\n  </channel>\n</rss>\n")
    return b"".join(out)


def branch_at_tip(repo: HgRepo) -> dict[bytes, bytes]:
    """The branch each branch tip is the tip of (hgweb names a changeset's branch there)."""
    return {node: branch for branch, (node, _closed) in repo.branch_tips().items()}


def _description(changeset: Changeset) -> bytes:
    """hg's ``desc|strip|escape|addbreaks|nonempty``."""
    return escape(changeset.description.strip()).replace(b"\n", b"<br/>\n") or b"(none)"


def _log_entry(info: web._Changesets, rev: int, changeset: Changeset, url: bytes, style: str,
               tips: Mapping[bytes, bytes], max_files: int) -> bytes:
    node = info.cl.node(rev)
    branch = changeset.extra.get(b"branch", b"default")
    at_tip = tips.get(node) == branch
    shown_branch = branch if at_tip or branch != b"default" else b""  # hgweb's inbranch or branches
    summary = escape(first_line(changeset.description.strip()).strip())
    if style == "atom":
        summary = summary or b"(none)"
    title = (b"[%s] " % escape(shown_branch) if shown_branch else b"") + summary
    files = b""
    if max_files >= 0:  # a file history's entries list no files (-1)
        files = b"".join(escape(path) + b"<br />" for path in changeset.files[:max_files])
        if len(changeset.files) > max_files:
            files += b"<br />"
    description = _description(changeset)
    names = (escape(shown_branch), b"".join(escape(n) for n in info.bookmarks.get(node, [])),
             b"".join(escape(n) for n in info.tags.get(node, [])))
    short = _short(node)
    if style == "atom":
        return (b" <entry>\n  <title>%s</title>\n  <id>%s#changeset-%s</id>\n  <link href=\"%srev/%s\"/>\n"
                b"  <author>\n   <name>%s</name>\n   <email>%s</email>\n  </author>\n"
                b"  <updated>%s</updated>\n  <published>%s</published>\n"
                b'  <content type="xhtml">\n   <table xmlns="http://www.w3.org/1999/xhtml">\n'
                % (title, url, binascii.hexlify(node), url, short, escape(person(changeset.user)),
                   obfuscate(email(changeset.user)), rfc3339(changeset), rfc3339(changeset))
                + _rows(short, names, changeset.user, description, files, "   ", " ", "left;")
                + b"   </table>\n  </content>\n </entry>\n")
    return (b"<item>\n    <title>%s</title>\n    <guid isPermaLink=\"true\">%srev/%s</guid>\n"
            b"    <link>%srev/%s</link>\n    <description>\n    <![CDATA[\n        <table>\n"
            % (title, url, short, url, short)
            + _rows(short, names, changeset.user, description, files, "        ", "    ", "left;vertical-align:top;")
            + b"        </table>\n    ]]>\n    </description>\n    <author>%s</author>\n"
              b"    <pubDate>%s</pubDate>\n</item>\n" % (obfuscate(changeset.user), rfc822(changeset)))


def _rows(short: bytes, names: Sequence[bytes], user: bytes, description: bytes, files: bytes, indent: str,
          step: str, user_style: str) -> bytes:
    """The entry's table: changeset, branch, bookmark, tag, user, description, files."""
    row_in, cell_in = (indent + step).encode(), (indent + step * 2).encode()
    rows = [(b"left;", b"changeset", short), (b"left;", b"branch", names[0]), (b"left;", b"bookmark", names[1]),
            (b"left;", b"tag", names[2]), (user_style.encode(), b"user", obfuscate(user)),
            (b"left;vertical-align:top;", b"description", description),
            (b"left;vertical-align:top;", b"files", files)]
    return b"".join(b'%s<tr>\n%s<th style="text-align:%s">%s</th>\n%s<td>%s</td>\n%s</tr>\n'
                    % (row_in, cell_in, style, label, cell_in, value, row_in) for style, label, value in rows)


def _named(repo: HgRepo, name: bytes, url: bytes, style: str, kind: bytes,
           entries: Sequence[tuple[bytes, bytes, Changeset]], updated: Changeset | None, title: bytes) -> bytes:
    out = [_header(url, style)]
    if style == "atom":
        out.append(b'\n <id>%s</id>\n <link rel="self" href="%satom-%s"/>\n <link rel="alternate" href="%s%s"/>\n'
                   b" <title>%s: %s</title>\n <summary>%s %s history</summary>\n"
                   b" <author><name>Mercurial SCM</name></author>\n %s\n\n%s"
                   % (url, url, title, url, title, name, title, name, kind,
                      b"<updated>%s</updated>" % rfc3339(updated) if updated is not None or kind == b"bookmark" else b"",
                      b" " if kind == b"branch" else b""))
        for label, node, changeset in entries:
            out.append(b' <entry>\n  <title>%s</title>\n  <link rel="alternate" href="%srev/%s"/>\n'
                       b"  <id>%s#%s-%s</id>\n  <updated>%s</updated>\n  <published>%s</published>\n"
                       b'  <content type="text">%s</content>\n </entry>\n'
                       % (escape(label), url, _short(node), url, kind, binascii.hexlify(node), rfc3339(changeset),
                          rfc3339(changeset), escape(label.strip())))
        out.append(b"\n</feed>\n")
    else:
        out.append(b"\n    <title>%s: %s</title>\n    <description>%s %s history</description>\n    "
                   % (name, title, name, kind))
        for label, node, changeset in entries:
            out.append(b"<item>\n    <title>%s</title>\n    <link>%srev/%s</link>\n"
                       b"    <description><![CDATA[%s]]></description>\n    <pubDate>%s</pubDate>\n</item>\n"
                       % (escape(label), url, _short(node), escape(label.strip()).replace(b"\n", b"<br/>\n"),
                          rfc822(changeset)))
        out.append(b"\n  </channel>\n</rss>\n")
    return b"".join(out)


def _visible_names(repo: HgRepo, names: Mapping[bytes, bytes]) -> list[tuple[bytes, bytes, Changeset]]:
    """Names on visible changesets, newest revision first, then names in reverse (hgweb's order)."""
    cl = repo.changelog()
    visible = repo.views(cl).visible
    found = sorted(((cl.rev(node), label, node) for label, node in names.items()
                    if label != b"tip" and cl.has_node(node) and visible[cl.rev(node)]), reverse=True)
    return [(label, node, repo.changeset(cl, rev)) for rev, label, node in found]


def _tags(repo: HgRepo, name: bytes, url: bytes, style: str) -> bytes:
    entries = _visible_names(repo, repo.tags())
    return _named(repo, name, url, style, b"tag", entries, entries[0][2] if entries else None, b"tags")


def _bookmarks(repo: HgRepo, name: bytes, url: bytes, style: str) -> bytes:
    entries = _visible_names(repo, repo.stored_bookmarks())
    return _named(repo, name, url, style, b"bookmark", entries, entries[0][2] if entries else None, b"bookmarks")


def _branches(repo: HgRepo, name: bytes, url: bytes, style: str) -> bytes:
    cl = repo.changelog()
    tips = sorted(((not closed, cl.rev(node), label, node) for label, (node, closed) in repo.branch_tips().items()),
                  reverse=True)
    entries = [(label, node, repo.changeset(cl, rev)) for _open, rev, label, node in tips]
    return _named(repo, name, url, style, b"branch", entries, entries[0][2] if entries else None, b"branches")
