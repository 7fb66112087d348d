"""petrova/probe/http.py through ``petrova probe``: no probe aimed inward, nothing recorded
that tells why a connection failed, and tokens only from the operator's allowlist and only
to trusted hosts. The fakes listen on 127.0.0.1, so the suite's default
``PETROVA_PROBE_ALLOW_PRIVATE=1`` is taken away where the refusal is the point."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.probe.test_probe import PEBBLE, World, certificate, world

__all__ = ["certificate", "world"]  # fixtures shared with tests/probe/test_probe.py

INGEST = "ingest-token-3c9e-never-sent"


def _catalogue_token(world: World, name: str) -> None:
    cat = world.fleet.catalogue
    cat.write_text(cat.read_text().replace('"PETROVA_PEBBLE_TOKEN"', f'"{name}"'))


def _sent_tokens(world: World) -> list[str]:
    return [s.headers.get("Authorization", "") for s in world.service.requests]


def test_without_the_switch_no_probe_connects_inward(world: World) -> None:
    world.add_repo("alpha-hq")
    got = world.outcomes(env={"PETROVA_PROBE_ALLOW_PRIVATE": None})
    for iid in ("traceo", "lore_cairnet"):
        cell = got[f"alpha-hq {iid}"]
        assert cell["outcome"] == "unreachable"
        assert "address not allowed" in cell["detail"]
    assert world.service.requests == []
    # the GitHub API the operator configured (GITHUB_API_URL) is the operator's: trusted
    assert got["alpha-hq ares"]["outcome"] == "ok"


def test_evidence_aimed_at_metadata_and_private_hosts_is_refused(world: World) -> None:
    targets = {
        "meta-hq": "https://169.254.169.254/latest/meta-data/",
        "ten-hq": "https://10.0.0.7:8080/x",
        "zero-hq": "https://0.0.0.0:22/",
        "mapped-hq": "https://[::ffff:127.0.0.1]:22/",
        "local-hq": "https://localhost:22/",
    }
    for slug, url in targets.items():
        evidence = world.evidence(slug, "traceo")
        evidence["traceo_endpoint"] = url
        world.add_repo(slug, {"traceo": evidence})
    got = world.outcomes(env={"PETROVA_PROBE_ALLOW_PRIVATE": None})
    for slug in targets:
        cell = got[f"{slug} traceo"]
        assert cell["outcome"] == "unreachable", cell
        assert cell["detail"].endswith("address not allowed"), cell


def test_recorded_details_never_tell_why_a_connection_failed(
    world: World, certificate: tuple[Path, Path]
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    plain = f"http://127.0.0.1:{world.github.url.rsplit(':', 1)[1].split('/')[0]}"
    targets = {
        "closed-hq": f"https://127.0.0.1:{closed_port}/x",  # connection refused
        "tlsver-hq": plain.replace("http://", "https://") + "/x",  # TLS to a plain server
        # a certificate for another name (the fake's is for 127.0.0.1 only)
        "badcert-hq": world.service.base.replace("127.0.0.1", "localhost") + "/x",
    }
    for slug, url in targets.items():
        evidence = world.evidence(slug, "traceo")
        evidence["traceo_endpoint"] = url
        world.add_repo(slug, {"traceo": evidence})
    got = world.outcomes()
    details = {got[f"{slug} traceo"]["detail"].rsplit(": ", 1)[-1] for slug in targets}
    outcomes = {got[f"{slug} traceo"]["outcome"] for slug in targets}
    assert outcomes == {"unreachable"}
    assert details == {"could not connect"}
    for slug in targets:
        detail = got[f"{slug} traceo"]["detail"].lower()
        for word in ("refused", "tls", "version", "certificate", "reset", "ssl"):
            assert word not in detail, detail


def test_a_catalogue_may_name_only_allowed_token_variables(world: World) -> None:
    _catalogue_token(world, "PETROVA_INGEST_TOKEN")
    world.add_repo("alpha-hq", {"lore_cairnet": world.evidence("alpha-hq", "lore_cairnet")})
    got = world.outcomes(env={"PETROVA_INGEST_TOKEN": INGEST})
    cell = got["alpha-hq lore_cairnet"]
    assert cell["outcome"] == "unreachable"
    assert "PETROVA_INGEST_TOKEN is not an allowed token variable" in cell["detail"]
    assert all(INGEST not in sent for sent in _sent_tokens(world))
    # the operator may allow it
    allowed = world.outcomes(
        env={"PETROVA_INGEST_TOKEN": INGEST, "PETROVA_PROBE_TOKEN_VARS": "PETROVA_INGEST_TOKEN"}
    )
    assert allowed["alpha-hq lore_cairnet"]["outcome"] == "ok"
    assert f"Bearer {INGEST}" in _sent_tokens(world)


def test_an_operator_allowlist_replaces_the_default(world: World) -> None:
    world.add_repo("alpha-hq", {"lore_cairnet": world.evidence("alpha-hq", "lore_cairnet")})
    got = world.outcomes(env={"PETROVA_PROBE_TOKEN_VARS": "SOMETHING_ELSE"})
    assert "PETROVA_PEBBLE_TOKEN is not an allowed" in got["alpha-hq lore_cairnet"]["detail"]
    assert all(PEBBLE not in sent for sent in _sent_tokens(world))


def test_the_github_token_goes_to_no_host_but_a_trusted_github_host(world: World) -> None:
    _catalogue_token(world, "GITHUB_TOKEN")
    world.add_repo("alpha-hq", {"lore_cairnet": world.evidence("alpha-hq", "lore_cairnet")})
    got = world.outcomes()
    cell = got["alpha-hq lore_cairnet"]
    assert cell["outcome"] == "unreachable"
    assert (
        "will not send GITHUB_TOKEN to 127.0.0.1, which is not a trusted GitHub host"
        in (cell["detail"])
    )
    assert all(world.github.token not in sent for sent in _sent_tokens(world))


def test_a_redirect_is_an_answer_never_followed(world: World) -> None:
    world.add_repo("alpha-hq", {"traceo": world.evidence("alpha-hq", "traceo")})
    world.service.routes["/traceo/alpha-hq"] = 302
    got = world.outcomes()
    cell = got["alpha-hq traceo"]
    assert cell["outcome"] != "ok"
    assert "answered 302" in cell["detail"]
    assert len(world.service.seen("/traceo/alpha-hq")) == 1
