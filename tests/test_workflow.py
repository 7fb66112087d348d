"""The schedule as shipped files: the GitHub workflow, the crontab line, the systemd units.

The workflow is validated against the GitHub workflow JSON Schema that check-jsonschema
ships offline; then the commands of all three ways are run for real, against a local
ingest server on 127.0.0.1, in a throwaway copy of the fleet.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from petrova.files.yaml_strict import load_yaml_file
from tests.conftest import PETROVA_BIN, ROOT, Fleet, _clean_env
from tests.ingest_server import Servers as Ingest
from tests.ingest_server import store_and_echo

WORKFLOW = ROOT / ".github" / "workflows" / "fleet-snapshot.yml"
DEPLOY = ROOT / "deploy"
TOKEN = "tok-schedule-KEEP-SECRET-5d1e"
CHECK_JSONSCHEMA = PETROVA_BIN.parent / "check-jsonschema"


def vendored_schema(name: str, package: str = "vendor") -> dict[str, Any]:
    files = resources.files("check_jsonschema.builtin_schemas").joinpath(package, name)
    schema: dict[str, Any] = json.loads(files.read_text(encoding="utf-8"))
    return schema


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml_file(WORKFLOW).data  # YAML 1.2: `on` stays a string
    return data


def steps() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = workflow()["jobs"]["snapshot"]["steps"]
    return result


def step(name: str) -> dict[str, Any]:
    (found,) = [s for s in steps() if s.get("name") == name]
    return found


# --- the workflow file ------------------------------------------------------------------


def test_the_workflow_matches_githubs_schema() -> None:
    schema = vendored_schema("github-workflows.json")
    errors = [e.message for e in Draft7Validator(schema).iter_errors(workflow())]
    assert errors == []
    timeouts = vendored_schema("github-workflows-require-timeout.json", "custom")
    assert [e.message for e in Draft7Validator(timeouts).iter_errors(workflow())] == []


def test_check_jsonschema_accepts_it_too() -> None:
    proc = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_can_fail() -> None:
    broken = workflow()
    del broken["jobs"]["snapshot"]["runs-on"]
    broken["concurrency"]["cancel-in-progress"] = "sometimes"
    schema = vendored_schema("github-workflows.json")
    assert list(Draft7Validator(schema).iter_errors(broken))


def test_schedule_and_queueing() -> None:
    wf = workflow()
    assert wf["on"]["schedule"] == [{"cron": "0 7 * * *"}]
    assert "workflow_dispatch" in wf["on"]
    assert wf["concurrency"]["cancel-in-progress"] is False
    assert wf["concurrency"]["group"]
    assert wf["permissions"] == {"contents": "read"}


def test_a_failed_probe_refresh_only_warns() -> None:
    probes = step("Refresh probe observations")
    assert probes["continue-on-error"] is True
    warn = step("Warn that observations were not refreshed")
    assert warn["if"] == f"steps.{probes['id']}.outcome == 'failure'"
    assert "::warning" in warn["run"]
    names = [s.get("name") for s in steps()]
    assert names.index("Refresh probe observations") < names.index(
        "Write the snapshot and publish it"
    )


def test_the_token_comes_from_a_secret_through_the_environment() -> None:
    publish = step("Write the snapshot and publish it")
    assert publish["env"]["PETROVA_INGEST_TOKEN"] == "${{ secrets.PETROVA_INGEST_TOKEN }}"
    assert "--publish" in publish["run"]
    for s in steps():  # never interpolated into a command line
        assert "secrets." not in s.get("run", "")
        assert "TOKEN" not in s.get("run", "")
    assert "secrets." not in json.dumps(workflow()["jobs"]["snapshot"].get("env", {}))


def test_the_snapshot_is_kept_14_days_even_when_publishing_fails() -> None:
    (upload,) = [s for s in steps() if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert upload["with"]["retention-days"] == 14
    assert upload["with"]["path"] == "fleet.json"
    assert "!cancelled()" in upload["if"]  # runs after a failed publish too
    names = [s.get("name") for s in steps()]
    assert names.index(upload["name"]) > names.index("Write the snapshot and publish it")


# --- running the shipped commands for real ---------------------------------------------


@pytest.fixture
def host(fleet: Fleet) -> Fleet:
    """The fleet copy as a deployed checkout: `.venv/bin/petrova` is the real console script."""
    venv_bin = fleet.root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "petrova").symlink_to(PETROVA_BIN)
    return fleet


def run_shell(script: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=_clean_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_published(
    proc: subprocess.CompletedProcess[str], host: Fleet, ingest_requests: list[Any]
) -> None:
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == ""  # unattended and successful: nothing to mail
    assert len(ingest_requests) == 1
    seen = ingest_requests[0]
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.body == (host.root / "fleet.json").read_bytes()
    assert TOKEN not in proc.stdout + proc.stderr


def test_the_workflow_publish_step_runs(host: Fleet, ingest: Ingest) -> None:
    server = ingest(store_and_echo)
    publish = step("Write the snapshot and publish it")
    env = {"PETROVA_INGEST_TOKEN": TOKEN, "PETROVA_INGEST_URL": server.url}
    proc = run_shell(publish["run"], cwd=host.root, env=env)
    assert_published(proc, host, server.requests)


def test_the_workflow_publish_step_wants_the_url(host: Fleet) -> None:
    publish = step("Write the snapshot and publish it")
    proc = run_shell(publish["run"], cwd=host.root, env={"PETROVA_INGEST_TOKEN": TOKEN})
    assert proc.returncode != 0
    assert "set the repository variable PETROVA_INGEST_URL" in proc.stderr


def test_the_workflow_probe_step_fails_without_probes_and_feeds_the_ledger_with_them(
    host: Fleet,
) -> None:
    probes = step("Refresh probe observations")
    missing = run_shell(probes["run"], cwd=host.root, env={})
    assert missing.returncode == 1
    assert "probes/run is missing" in missing.stderr
    line = json.dumps(
        {"slug": "kahn-hq", "integration": "ares", "outcome": "ok", "at": "2026-11-26T06:50:00Z"}
    )
    script = host.write("probes/run", f"#!/bin/sh\necho '{line}'\n")
    script.chmod(0o755)
    fed = run_shell(probes["run"], cwd=host.root, env={})
    assert fed.returncode == 0, fed.stderr
    assert "ok" in (host.state_dir / "kahn-hq.yaml").read_text()


def _cron_jobs() -> list[tuple[str, str]]:
    jobs: list[tuple[str, str]] = []
    for line in (DEPLOY / "crontab").read_text().splitlines():
        if line.startswith("#") or not line.strip() or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        jobs.append((" ".join(fields[:5]), fields[5]))
    return jobs


def _env_file(path: Path, url: str) -> Path:
    path.write_text(f"PETROVA_INGEST_URL={url}\nPETROVA_INGEST_TOKEN={TOKEN}\n")
    path.chmod(0o600)
    return path


def test_the_crontab_runs_at_0700_utc(host: Fleet, ingest: Ingest, tmp_path: Path) -> None:
    text = (DEPLOY / "crontab").read_text()
    assert "CRON_TZ=UTC" in text.splitlines()
    assert "SHELL=/bin/bash" in text.splitlines()
    assert "%" not in "".join(cmd for _, cmd in _cron_jobs())  # cron would cut the line there
    (snapshot_job,) = [(when, cmd) for when, cmd in _cron_jobs() if "snapshot" in cmd]
    assert snapshot_job[0] == "0 7 * * *"
    assert "flock" not in text.replace("No flock needed", "")
    server = ingest(store_and_echo)
    env_file = _env_file(tmp_path / "ingest.env", server.url)
    command = (
        snapshot_job[1]
        .replace("/etc/petrova/ingest.env", str(env_file))
        .replace("/srv/petrova", str(host.root))
    )
    proc = run_shell(command, cwd=tmp_path, env={})
    assert_published(proc, host, server.requests)
    assert TOKEN not in snapshot_job[1]


def _unit(name: str) -> dict[str, list[str]]:
    """key -> values of a systemd unit file (keys may repeat)."""
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_the_systemd_timer_fires_daily_at_0700_utc() -> None:
    timer = _unit("petrova-snapshot.timer")
    assert timer["OnCalendar"] == ["*-*-* 07:00:00 UTC"]
    assert timer["Persistent"] == ["true"]
    assert timer["Unit"] == ["petrova-snapshot.service"]
    assert timer["WantedBy"] == ["timers.target"]


def test_the_systemd_service_runs(host: Fleet, ingest: Ingest, tmp_path: Path) -> None:
    service = _unit("petrova-snapshot.service")
    assert service["Type"] == ["oneshot"]
    assert service["EnvironmentFile"] == ["/etc/petrova/ingest.env"]
    (pre,) = service["ExecStartPre"]
    assert pre.startswith("-")  # a failed probe refresh does not stop the snapshot
    assert "state record --from -" in pre
    server = ingest(store_and_echo)
    env_file = _env_file(tmp_path / "ingest.env", server.url)
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    root = str(host.root)
    (exec_start,) = service["ExecStart"]
    argv = [
        arg.replace("${PETROVA_INGEST_URL}", env["PETROVA_INGEST_URL"]).replace(
            "/srv/petrova", root
        )
        for arg in shlex.split(exec_start)
    ]
    cwd = service["WorkingDirectory"][0].replace("/srv/petrova", root)
    proc = subprocess.run(
        argv, cwd=cwd, env=_clean_env(env), capture_output=True, text=True, check=False
    )
    assert_published(proc, host, server.requests)
    assert TOKEN not in exec_start


def test_the_readme_shows_the_shipped_lines() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in (DEPLOY / "crontab").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line in readme
    assert "## Running it on a schedule" in readme
    assert "OnCalendar=*-*-* 07:00:00 UTC" in readme
    assert "sudo systemctl enable --now petrova-snapshot.timer" in readme
