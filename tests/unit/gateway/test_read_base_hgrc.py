"""``read_base_hgrc`` sets a repository's ``base_hgrc`` from the ``--config`` file's ``[hg] hgrc`` at
every request, to None too: an hg repository may be given again to the next request (HTTP reads
reuse an open repository), which must not keep a file the operator has since taken out."""

from __future__ import annotations

from types import SimpleNamespace

from gateway.protected import read_base_hgrc


def test_a_repository_given_again_forgets_an_hgrc_the_config_no_longer_names() -> None:
    repo = SimpleNamespace(base_hgrc=b"/etc/hgwire/hgrc")  # set by an earlier request's config
    read_base_hgrc(repo, None)
    assert repo.base_hgrc is None
    policy = SimpleNamespace(current=SimpleNamespace(hg_hgrc="/etc/hgwire/other"))
    read_base_hgrc(repo, SimpleNamespace(policy=policy))  # type: ignore[arg-type]
    assert repo.base_hgrc == b"/etc/hgwire/other"
