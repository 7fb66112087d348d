"""`make bench`: petrova against the straightforward way, as whole processes.

For each fleet (a size, for the mature shape, or ``young-N``: see benchmarks/fleetgen.py)
it generates a synthetic fleet, then measures wall time and peak memory (the child's
maxrss) of

- ``petrova snapshot`` (one process, nothing cached: every run is a cold run),
- the parse floor: PyYAML's C loader merely parsing the same files (benchmarks/floor.py),
- ``petrova registry validate`` and ``petrova rollout status --json``,
- the same three commands the straightforward way (benchmarks/straightforward.py),
- ``petrova --version`` and ``petrova --help``,

checks that both ways write byte-for-byte the same snapshot, and prints a table with the
ratios. Results also go to ``benchmarks/out/results.json``. Nothing here asserts a time:
the figures are for people (benchmarks/RESULTS.md), the suite only runs it small.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.fleetgen import NOW, SHAPES, generate

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
BIN = Path(sys.executable).parent
PETROVA = [str(BIN / "petrova")]
STRAIGHT = [sys.executable, "-m", "benchmarks.straightforward"]
FLOOR = [sys.executable, "-m", "benchmarks.floor"]


@dataclass
class Measure:
    seconds: float
    peak_mb: float


def run(argv: list[str], *, env: dict[str, str], cwd: Path, stdout: Path | None = None) -> Measure:
    """One whole process: wall time and its own peak resident memory."""
    out = stdout.open("wb") if stdout else subprocess.DEVNULL
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if stdout:
        out.close()  # type: ignore[union-attr]
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{stderr}")
    return Measure(seconds, usage.ru_maxrss / 1024)


def best(measures: list[Measure]) -> Measure:
    return Measure(statistics.median(m.seconds for m in measures), max(m.peak_mb for m in measures))


def fleet_spec(text: str) -> tuple[str, int]:
    """``10000`` (the mature shape) or ``young-10000``: the shape and the size."""
    shape, _, size = text.rpartition("-")
    shape = shape or "mature"
    if shape not in SHAPES or not size.isdigit() or int(size) < 2:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a fleet: a size (e.g. 10000) or SHAPE-SIZE with SHAPE one of "
            f"{', '.join(SHAPES)} (e.g. young-10000)"
        )
    return shape, int(size)


def label(shape: str, n: int) -> str:
    return str(n) if shape == "mature" else f"{shape}-{n}"


def bench_size(
    n: int, repeat: int, *, regenerate: bool, shape: str = "mature"
) -> dict[str, object]:
    fleet = OUT / f"fleet-{label(shape, n)}"
    if regenerate or not (fleet / "registry.yaml").is_file():
        print(f"generating a {shape} fleet of {n} repos in {fleet} ...", file=sys.stderr)
        generate(fleet, n, shape=shape)
    base_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PETROVA_")},
        "SOURCE_DATE_EPOCH": str(int(NOW.timestamp())),
        "PETROVA_WORKSPACE": str(fleet / "workspace"),
    }
    args = ["--registry", str(fleet / "registry.yaml")]
    results: dict[str, object] = {"n": n, "shape": shape, "fleet": label(shape, n)}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        fast_out, slow_out = tmpdir / "fast.json", tmpdir / "slow.json"

        def times(argv: list[str], count: int = repeat) -> Measure:
            return best([run(argv, env=base_env, cwd=fleet) for _ in range(count)])

        snap = [*PETROVA, "snapshot", *args, "-o", str(fast_out)]
        commands: dict[str, Callable[[], Measure]] = {
            "snapshot": lambda: times(snap),
            "registry validate": lambda: best(
                [
                    run([*PETROVA, "registry", "validate", *args], env=base_env, cwd=fleet)
                    for _ in range(repeat)
                ]
            ),
            "rollout status": lambda: best(
                [
                    run([*PETROVA, "rollout", "status", "--json", *args], env=base_env, cwd=fleet)
                    for _ in range(repeat)
                ]
            ),
            "--version": lambda: best(
                [
                    run([*PETROVA, "--version"], env=base_env, cwd=fleet)
                    for _ in range(max(repeat, 5))
                ]
            ),
            "--help": lambda: best(
                [run([*PETROVA, "--help"], env=base_env, cwd=fleet) for _ in range(max(repeat, 5))]
            ),
        }
        straight = {
            "snapshot": [*STRAIGHT, "snapshot", *args, "-o", str(slow_out)],
            "registry validate": [*STRAIGHT, "registry", "validate", *args],
            "rollout status": [*STRAIGHT, "rollout", "status", "--json", *args],
        }
        slow_env = {**base_env, "PYTHONPATH": str(HERE.parent)}
        floor_argv = [*FLOOR, args[1], str(fleet / "workspace"), str(fleet / "state")]
        floor = best([run(floor_argv, env=slow_env, cwd=fleet) for _ in range(repeat)])
        results["parse floor"] = {"seconds": floor.seconds, "peak_mb": floor.peak_mb}
        for name, measure in commands.items():
            ours = measure()
            row: dict[str, object] = {"petrova": asdict(ours)}
            if name in straight:
                theirs = run(straight[name], env=slow_env, cwd=fleet)
                row["straightforward"] = asdict(theirs)
                row["ratio"] = round(theirs.seconds / ours.seconds, 1)
            if name == "snapshot":
                row["vs_floor"] = round(floor.seconds / ours.seconds, 1)
            results[name] = row
            print(
                f"  {label(shape, n):>11}  {name:<22} {ours.seconds:7.3f} s {ours.peak_mb:7.1f} MB"
                + (
                    f"   straightforward {row['straightforward']['seconds']:7.3f} s"  # type: ignore[index]
                    f"  x{row['ratio']}"
                    if "ratio" in row
                    else ""
                ),
                file=sys.stderr,
            )
        results["identical_output"] = fast_out.read_bytes() == slow_out.read_bytes()
    return results


def table(all_results: list[dict[str, object]]) -> str:
    lines = [
        "| fleet | command | petrova (s) | peak MB | straightforward (s) | peak MB | ratio |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for res in all_results:
        for name, row in res.items():
            if not isinstance(row, dict) or "petrova" not in row:
                continue
            ours = row["petrova"]
            theirs = row.get("straightforward")
            lines.append(
                f"| {res['fleet']} | `{name}` | {ours['seconds']:.3f} | {ours['peak_mb']:.0f} | "
                + (
                    f"{theirs['seconds']:.3f} | {theirs['peak_mb']:.0f} | {row['ratio']}x |"
                    if theirs
                    else "| | |"
                )
            )
    for res in all_results:
        floor, snap = res["parse floor"], res["snapshot"]
        lines.append(
            f"\n{res['fleet']}: parse floor (PyYAML's C loader, parsing only) "
            f"{floor['seconds']:.3f} s {floor['peak_mb']:.0f} MB; snapshot "  # type: ignore[index]
            f"{snap['petrova']['seconds']:.3f} s {snap['petrova']['peak_mb']:.0f} MB, "  # type: ignore[index]
            f"{snap['vs_floor']}x faster than the floor; "  # type: ignore[index]
            f"byte-for-byte identical snapshots: {res['identical_output']}"
        )
    mature = [r for r in all_results if r["shape"] == "mature"]
    if len(mature) >= 2:
        small, large = mature[0], mature[-1]
        growth = large["n"] / small["n"]  # type: ignore[operator]
        for name in ("snapshot", "registry validate", "rollout status"):
            cost = large[name]["petrova"]["seconds"] / small[name]["petrova"]["seconds"]  # type: ignore[index]
            lines.append(
                f"{name}: {small['n']} -> {large['n']} repos ({growth:g}x) costs {cost:.1f}x"
            )
    return "\n".join(lines) + "\n"


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=fleet_spec,
        nargs="+",
        default=[("mature", 1000), ("mature", 10000), ("young", 10000)],
        metavar="FLEET",
        help="fleets to measure: a size (the mature shape) or young-SIZE "
        "[default: 1000 10000 young-10000]",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--results", type=Path, default=OUT / "results.json")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    all_results = [
        bench_size(n, args.repeat, regenerate=args.regenerate, shape=shape)
        for shape, n in args.sizes
    ]
    report = {"machine": machine(), "results": all_results}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print(table(all_results), end="")
    print(f"\nresults: {args.results}", file=sys.stderr)
    if not all(r["identical_output"] for r in all_results):
        raise SystemExit("the fast and the straightforward snapshots differ")


if __name__ == "__main__":
    main()
