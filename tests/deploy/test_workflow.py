"""The schedule as shipped files: the GitHub workflow, the crontab line, the systemd units.

The workflow is validated against the GitHub workflow JSON Schema that check-jsonschema
ships offline; then the commands of all three ways are run for real, against a local
ingest server on 127.0.0.1, in a throwaway copy of the fleet.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from petrova.files.yaml_strict import load_yaml_file
from tests.conftest import PETROVA_BIN, ROOT, Fleet, Spawn, _clean_env, make_git_repo
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
    # write access for this job only: it commits the ledgers back
    # state/ back and the pin branches; petrova notify's issues and pin PRs
    assert wf["jobs"]["snapshot"]["permissions"] == {
        "contents": "write",
        "issues": "write",
        "pull-requests": "write",
    }


def test_every_schedule_runs_the_same_daily_job() -> None:
    """The workflow, the crontab and the systemd unit all run `petrova daily`, keep the
    ledgers (--commit-state --push), and none of them has its own glue left."""
    daily = step("The daily run")["run"]
    (cron,) = [cmd for _, cmd in _cron_jobs()]
    (service,) = _unit("petrova-snapshot.service")["ExecStart"]
    for command in (daily, cron, service):
        assert "petrova daily" in command
        assert "--commit-state --push" in command
        assert "--publish" in command
    everything = WORKFLOW.read_text() + (DEPLOY / "crontab").read_text() + service
    for glue in ("probes/run", "jq ", "git clone", "state record --from"):
        assert glue not in everything.split("# Beyond one runner")[0], glue
    checkout = steps()[0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0  # the state commit may need a rebase


def test_the_tokens_come_from_secrets_through_the_environment() -> None:
    daily = step("The daily run")
    assert daily["env"]["PETROVA_INGEST_TOKEN"] == "${{ secrets.PETROVA_INGEST_TOKEN }}"
    assert daily["env"]["GITHUB_TOKEN"] == "${{ secrets.PETROVA_GITHUB_TOKEN }}"
    assert daily["env"]["PETROVA_PEBBLE_TOKEN"] == "${{ secrets.PETROVA_PEBBLE_TOKEN }}"
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
    assert names.index(upload["name"]) > names.index("The daily run")


def test_the_systemd_unit_is_bounded_and_verifies() -> None:
    service = _unit("petrova-snapshot.service")
    assert service["TimeoutStartSec"] == ["1h"]
    assert service["EnvironmentFile"] == ["/etc/petrova/petrova.env"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    proc = subprocess.run(
        [analyze, "verify", str(DEPLOY / "petrova-snapshot.timer")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Unknown key" not in proc.stderr and "Invalid" not in proc.stderr, proc.stderr


def test_the_deploy_files_agree_on_the_env_file() -> None:
    """One owner and mode for the env file, said the same way everywhere."""
    said = "owner root, group petrova, mode 0640"
    for name in ("crontab", "petrova-snapshot.service", "petrova.env.example"):
        assert said in (DEPLOY / name).read_text().replace("\n# ", " "), name


# --- running the shipped commands for real ---------------------------------------------


@pytest.fixture
def host(fleet: Fleet, tmp_path: Path) -> Iterator[tuple[Fleet, dict[str, str]]]:
    """The fleet as a deployed checkout: `.venv/bin/petrova` is the real console script,
    the checkout is a clone of a bare origin (the ledgers are pushed there), and every
    registry url is mapped by git's insteadOf onto a local bare repo."""
    venv_bin = fleet.root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "petrova").symlink_to(PETROVA_BIN)
    remotes = tmp_path / "remotes"
    for repo in load_yaml_file(fleet.registry).data["repos"]:
        owner_name = repo["url"].removeprefix("https://github.com/")
        consumer = make_git_repo(tmp_path / "src" / owner_name, {"README.md": "x\n"})
        _git(tmp_path, "clone", "-q", "--bare", str(consumer), str(remotes / f"{owner_name}.git"))
    origin = tmp_path / "control-plane.git"
    (fleet.root / ".gitignore").write_text(".venv/\nfleet.json\n")
    _git(fleet.root, "init", "-q", "-b", "main")
    _git(fleet.root, "add", "-A")
    _git(fleet.root, "commit", "-q", "-m", "control plane")
    _git(tmp_path, "clone", "-q", "--bare", str(fleet.root), str(origin))
    _git(fleet.root, "remote", "add", "origin", str(origin))
    _git(fleet.root, "fetch", "-q", "origin")
    _git(fleet.root, "branch", "-q", "--set-upstream-to=origin/main")
    env = {
        **GIT_ISOLATION,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{remotes.as_uri()}/.insteadOf",
        "GIT_CONFIG_VALUE_0": "https://github.com/",
        "PETROVA_WORKSPACE": str(tmp_path / "workspace"),
        "PETROVA_INGEST_TOKEN": TOKEN,
        "PETROVA_PEBBLE_TOKEN": "pebble-" + TOKEN,
    }
    yield fleet, env


GIT_ISOLATION = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        **GIT_ISOLATION,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def run_shell(script: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=_clean_env(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_daily_ran(
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


def test_the_workflow_daily_step_runs(host: tuple[Fleet, dict[str, str]], ingest: Ingest) -> None:
    fleet, env = host
    server = ingest(store_and_echo)
    daily = step("The daily run")
    proc = run_shell(daily["run"], cwd=fleet.root, env={**env, "PETROVA_INGEST_URL": server.url})
    assert_daily_ran(proc, fleet, server.requests)
    synced = sorted(p.name for p in Path(env["PETROVA_WORKSPACE"]).iterdir() if p.is_dir())
    assert "kahn-hq" in synced and "petrova-codes" not in synced


def test_the_workflow_daily_step_wants_the_url(host: tuple[Fleet, dict[str, str]]) -> None:
    fleet, env = host
    proc = run_shell(step("The daily run")["run"], cwd=fleet.root, env=env)
    assert proc.returncode != 0
    assert "set the repository variable PETROVA_INGEST_URL" in proc.stderr


def _cron_jobs() -> list[tuple[str, str]]:
    jobs: list[tuple[str, str]] = []
    for line in (DEPLOY / "crontab").read_text().splitlines():
        if line.startswith("#") or not line.strip() or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        jobs.append((" ".join(fields[:5]), fields[5]))
    return jobs


def _env_file(path: Path, env: dict[str, str], url: str) -> Path:
    keep = ("PETROVA_INGEST_TOKEN", "PETROVA_PEBBLE_TOKEN", "PETROVA_WORKSPACE")
    lines = [f"PETROVA_INGEST_URL={url}", *(f"{k}={env[k]}" for k in keep)]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def test_the_crontab_runs_at_0700_utc(
    host: tuple[Fleet, dict[str, str]], ingest: Ingest, tmp_path: Path
) -> None:
    fleet, env = host
    text = (DEPLOY / "crontab").read_text()
    assert "CRON_TZ=UTC" in text.splitlines()
    assert "SHELL=/bin/bash" in text.splitlines()
    assert "%" not in "".join(cmd for _, cmd in _cron_jobs())  # cron would cut the line there
    ((when, command),) = _cron_jobs()
    assert when == "0 7 * * *"
    assert "flock" not in text.replace("No\n# flock needed", "").replace("No flock needed", "")
    server = ingest(store_and_echo)
    env_file = _env_file(tmp_path / "petrova.env", env, server.url)
    command = command.replace("/etc/petrova/petrova.env", str(env_file)).replace(
        "/srv/petrova", str(fleet.root)
    )
    git_only = {k: v for k, v in env.items() if k.startswith("GIT_")}
    proc = run_shell(command, cwd=tmp_path, env=git_only)
    assert_daily_ran(proc, fleet, server.requests)
    assert TOKEN not in command


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


def test_the_systemd_service_runs(
    host: tuple[Fleet, dict[str, str]], ingest: Ingest, tmp_path: Path
) -> None:
    fleet, env = host
    service = _unit("petrova-snapshot.service")
    assert service["Type"] == ["oneshot"]
    server = ingest(store_and_echo)
    env_file = _env_file(tmp_path / "petrova.env", env, server.url)
    unit_env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    root = str(fleet.root)
    (exec_start,) = service["ExecStart"]
    argv = [
        arg.replace("${PETROVA_INGEST_URL}", unit_env["PETROVA_INGEST_URL"]).replace(
            "/srv/petrova", root
        )
        for arg in shlex.split(exec_start)
    ]
    cwd = service["WorkingDirectory"][0].replace("/srv/petrova", root)
    git_only = {k: v for k, v in env.items() if k.startswith("GIT_")}
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=_clean_env({**unit_env, **git_only}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert_daily_ran(proc, fleet, server.requests)
    assert TOKEN not in exec_start


def test_the_operations_guide_shows_the_shipped_lines() -> None:
    guide = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for line in (DEPLOY / "crontab").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line in guide
    assert "## Running it on a schedule" in guide
    assert "OnCalendar=*-*-* 07:00:00 UTC" in guide
    assert "sudo systemctl enable --now petrova-snapshot.timer" in guide
    readme = (ROOT / "README.md").read_text()
    assert "petrova daily -o fleet.json --publish" in readme


# --- beyond one runner: the sharded jobs of the same workflow --------------------------------

ACTIONLINT = PETROVA_BIN.parent / "actionlint"


def job(name: str) -> dict[str, Any]:
    found: dict[str, Any] = workflow()["jobs"][name]
    return found


def job_step(job_name: str, name: str) -> dict[str, Any]:
    (found,) = [s for s in job(job_name)["steps"] if s.get("name") == name]
    return found


def test_actionlint_passes_every_workflow_and_can_fail(tmp_path: Path) -> None:
    files = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert files
    proc = subprocess.run(
        [str(ACTIONLINT), *map(str, files)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("needs.plan.outputs.matrix", "needs.plann.outputs.matrix")
    )
    proc = subprocess.run(
        [str(ACTIONLINT), str(broken)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1 and "plann" in proc.stdout


def test_one_runner_or_the_shards_never_both() -> None:
    switch = "inputs.shards || vars.PETROVA_SHARDS"
    assert job("snapshot")["if"] == f"${{{{ !({switch}) }}}}"
    assert job("plan")["if"] == f"${{{{ {switch} }}}}"
    assert job("shard")["needs"] == "plan"
    assert job("final")["needs"] == ["plan", "shard"]
    # the final job runs after a failed shard too (its repos then say why), never cancelled
    assert "!cancelled()" in job("final")["if"]
    assert job("shard")["strategy"]["fail-fast"] is False
    assert (
        job("shard")["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    )
    wf = workflow()
    assert wf["concurrency"] == {"group": "fleet-snapshot", "cancel-in-progress": False}


def test_each_job_has_the_least_privilege_it_needs() -> None:
    assert workflow()["permissions"] == {"contents": "read"}
    assert job("plan")["permissions"] == {}
    assert job("shard")["permissions"] == {"contents": "write"}  # pushes its ledgers
    # the run record; notify runs once, here: issues, the pin PRs (never in a shard)
    assert job("final")["permissions"] == {
        "contents": "write",
        "issues": "write",
        "pull-requests": "write",
    }
    assert "issues" not in job("shard")["permissions"]
    for name in ("shard", "final"):
        checkout = job(name)["steps"][0]
        assert checkout["uses"].startswith("actions/checkout@")
        assert checkout["with"]["ref"] == "${{ github.ref_name }}"  # the head, not the trigger


def test_each_shard_keeps_its_own_cache_and_hands_over_hidden_files() -> None:
    cache = job_step("shard", "Keep this shard's clones and GitHub ETags between runs")
    key = cache["with"]["key"]
    assert "${{ matrix.shard }}-of-${{ needs.plan.outputs.count }}" in key
    assert cache["with"]["restore-keys"] in key
    upload = job_step("shard", "Hand the contracts to the final job")
    assert upload["with"]["include-hidden-files"] is True  # .petrova/ is a dot folder
    assert upload["with"]["path"] == "shard-bundle"
    download = job_step("final", "The shards' contracts")
    assert download["with"] == {"pattern": "petrova-shard-*", "path": "shard-bundles"}


def test_no_job_puts_a_secret_on_a_command_line() -> None:
    for name, body in workflow()["jobs"].items():
        assert "secrets." not in json.dumps(body.get("env", {})), name
        for s in body["steps"]:
            assert "secrets." not in s.get("run", ""), (name, s.get("name"))
            assert "TOKEN" not in s.get("run", ""), (name, s.get("name"))
            assert "PRIVATE_KEY" not in s.get("run", ""), (name, s.get("name"))
    shard_env = job_step("shard", "The shard's daily run")["env"]
    assert shard_env["PETROVA_GITHUB_APP_PRIVATE_KEY"] == (
        "${{ secrets.PETROVA_GITHUB_APP_PRIVATE_KEY }}"
    )


def test_the_plan_step_refuses_a_bad_count(tmp_path: Path) -> None:
    script = job_step("plan", "The shards")["run"]
    for count, matrix in (("4", "[1,2,3,4]"), ("2", "[1,2]")):
        output = tmp_path / f"out-{count}"
        proc = run_shell(script, cwd=tmp_path, env={"SHARDS": count, "GITHUB_OUTPUT": str(output)})
        assert proc.returncode == 0, proc.stderr
        assert output.read_text() == f"count={count}\nmatrix={matrix}\n"
    for bad in ("1", "0", "65", "four", "4; rm -rf /"):
        out = tmp_path / "bad"
        proc = run_shell(script, cwd=tmp_path, env={"SHARDS": bad, "GITHUB_OUTPUT": str(out)})
        assert proc.returncode == 1
        assert "::error title=PETROVA_SHARDS::" in proc.stdout


def test_the_sharded_jobs_run_for_real_and_match_one_runner(
    host: tuple[Fleet, dict[str, str]], ingest: Ingest, tmp_path: Path, spawn: Spawn
) -> None:
    """The shard job's command in N checkouts at once, the artifacts laid out as
    download-artifact does, then the final job's command: the same snapshot as the one
    runner's job, published once."""
    _fleet, env = host
    origin = tmp_path / "control-plane.git"
    one_origin = tmp_path / "one.git"
    _git(tmp_path, "clone", "-q", "--bare", str(origin), str(one_origin))

    def checkout(name: str, source: Path) -> Path:
        root = tmp_path / name
        _git(tmp_path, "clone", "-q", str(source), str(root))
        (root / ".venv" / "bin").mkdir(parents=True)
        (root / ".venv" / "bin" / "petrova").symlink_to(PETROVA_BIN)
        return root

    server = ingest(store_and_echo)
    one = checkout("one", one_origin)
    one_env = {**env, "PETROVA_INGEST_URL": server.url, "PETROVA_WORKSPACE": str(tmp_path / "w1")}
    proc = run_shell(step("The daily run")["run"], cwd=one, env=one_env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr

    count = 3
    script = job_step("shard", "The shard's daily run")["run"]
    running = []
    for k in range(1, count + 1):
        root = checkout(f"shard-{k}", origin)
        shard_env = {**env, "SHARD": f"{k}/{count}", "PETROVA_WORKSPACE": str(root / "ws")}
        running.append(
            (
                root,
                spawn(
                    ["bash", "-e", "-o", "pipefail", "-c", script],
                    cwd=root,
                    env=_clean_env(shard_env),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    downloads = None
    for k, (root, shard_proc) in enumerate(running, start=1):
        out, err = shard_proc.communicate(timeout=300)
        assert shard_proc.returncode == 0 and out == err == "", err
        # download-artifact with a pattern: one folder per artifact, named after it
        if downloads is None:
            downloads = tmp_path / "final" / "shard-bundles"
        shutil.copytree(root / "shard-bundle", downloads / f"petrova-shard-{k}")
    final = tmp_path / "final"
    _git(final.parent, "clone", "-q", str(origin), str(tmp_path / "final-checkout"))
    shutil.copytree(tmp_path / "final-checkout", final, dirs_exist_ok=True)
    (final / ".venv" / "bin").mkdir(parents=True)
    (final / ".venv" / "bin" / "petrova").symlink_to(PETROVA_BIN)
    final_env = {**env, "PETROVA_INGEST_URL": server.url, "PETROVA_WORKSPACE": str(final / "ws")}
    proc = run_shell(job_step("final", "The final run")["run"], cwd=final, env=final_env)
    assert proc.returncode == 0 and proc.stdout == proc.stderr == "", proc.stderr
    assert (final / "fleet.json").read_bytes() == (one / "fleet.json").read_bytes()
    assert [r.body for r in server.requests] == [(one / "fleet.json").read_bytes()] * 2
    # each shard synced only its share, and together all of the fleet, once
    synced = [
        sorted(p.name for p in (r / "ws").iterdir() if p.is_dir() and p.name[0] != ".")
        for r, _ in running
    ]
    everything = sorted(
        p.name for p in (tmp_path / "w1").iterdir() if p.is_dir() and p.name[0] != "."
    )
    assert sorted(n for names in synced for n in names) == everything
    assert all(len(names) < len(everything) for names in synced)
