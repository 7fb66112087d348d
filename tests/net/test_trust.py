"""petrova/net/trust.py: which hosts may receive the GitHub token (the operator's word only)."""

from __future__ import annotations

import pytest

from petrova.net.trust import is_trusted_github_host, trusted_github_hosts


def test_by_default_github_com_and_the_configured_api_host() -> None:
    assert trusted_github_hosts({}) == ("github.com", "api.github.com")
    env = {"GITHUB_API_URL": "https://ghe.example.com/api/v3"}
    assert trusted_github_hosts(env) == ("github.com", "api.github.com", "ghe.example.com")


def test_the_operator_adds_hosts_and_ports() -> None:
    env = {"PETROVA_TRUSTED_GIT_HOSTS": "git.corp.example, mirror.example:8443  bad/host"}
    assert trusted_github_hosts(env)[2:] == ("git.corp.example", "mirror.example:8443")
    assert is_trusted_github_host("mirror.example", env, port=8443)
    assert not is_trusted_github_host("mirror.example", env, port=443)
    assert is_trusted_github_host("git.corp.example", env, port=443)
    assert not is_trusted_github_host("git.corp.example", env, port=8443)  # as git matches


@pytest.mark.parametrize(
    "host",
    ["github.com.evil.example", "evil-github.com", "api.github.com.evil", "gitHub.co", ""],
)
def test_look_alike_hosts_are_not_trusted(host: str) -> None:
    assert not is_trusted_github_host(host, {}, port=443)


def test_case_and_a_trailing_dot_do_not_matter() -> None:
    assert is_trusted_github_host("GitHub.com.", {}, port=443)
