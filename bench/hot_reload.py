#!/usr/bin/env python3
"""Hot reload: how long from saving a file to the first invocation that runs the saved code.

One `lamina serve` (the working tree, or `--lamina-rev REV`); per runtime (Python, Node.js) a
function created with `Code={"S3Bucket": "hot-reload", "S3Key": FOLDER}` whose handler returns
a constant. Each round waits a random 0.2–0.6 s (the environment is warm, usually frozen),
rewrites the handler file with a new constant (write + close: "saved"), then invokes at once and
again on one keep-alive connection until the answer carries the new constant. The figure is
saved → that answer, timed by the client; the invocations that still answered the old code are
counted ("stale calls").

Baseline, same run and engine: the redeploy hot reload replaces, a zip function updated with
UpdateFunctionCode (ZipFile), then invoked until it answers the new constant (update sent →
that answer). The ratio hot ÷ redeploy is the median of each. The target: p99 saved → seen
under 1 s.

  .venv/bin/python bench/hot_reload.py                 # 40 edits per runtime (~1 min)
  .venv/bin/python bench/hot_reload.py --n 10 --runtimes python
  .venv/bin/python bench/hot_reload.py --lamina-rev HEAD

Scratch files in $LAMINA_BENCH_SCRATCH (default <tmp>/lamina-bench-hot-reload); results in
bench/results/hot-reload-<time>.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib.lambda_api import ROLE, LambdaApi, zip_bytes  # noqa: E402
from lib.servers import LaminaServer, lamina_command  # noqa: E402
from lib.stats import REPO, git_rev, percentile  # noqa: E402

SOURCES = {
    "python": (
        "python3.11",
        "handler.py",
        "handler.handler",
        "def handler(event, context):\n    return {{'value': {value!r}}}\n",
    ),
    "node": (
        "nodejs20.x",
        "handler.mjs",
        "handler.handler",
        "export const handler = async () => ({{ value: {value!r} }});\n",
    ),
}


def create(api: LambdaApi, name: str, runtime: str, handler: str, code: dict) -> None:
    document = {
        "FunctionName": name,
        "Runtime": runtime,
        "Role": ROLE,
        "Handler": handler,
        "Timeout": 30,
        "MemorySize": 512,
        "Code": code,
    }
    status, _, body = api.request(
        "POST",
        "/2015-03-31/functions",
        json.dumps(document).encode(),
        {"Content-Type": "application/json"},
    )
    if status != 201:
        raise SystemExit(f"CreateFunction {name}: {status} {body[:300]!r}")


def value_of(api: LambdaApi, name: str) -> str | None:
    status, error, body = api.invoke(name, b"{}")
    if status != 200 or error:
        return None
    return json.loads(body).get("value")


def until(
    api: LambdaApi, name: str, wanted: str, gap_s: float = 0.0, limit_s: float = 30.0
) -> tuple[float, int]:
    """Invoke until the answer is `wanted`, `gap_s` apart: (time of that answer, stale
    answers before it)."""
    start, stale = time.perf_counter(), 0
    while value_of(api, name) != wanted:
        stale += 1
        if time.perf_counter() - start > limit_s:
            raise SystemExit(f"{name} never answered {wanted!r}")
        if gap_s:
            time.sleep(gap_s)
    return time.perf_counter(), stale


def hot_rounds(api: LambdaApi, kind: str, folder: Path, n: int, gap_s: float) -> dict:
    runtime, filename, handler, template = SOURCES[kind]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(template.format(value="v0"))
    name = f"hot-{kind}-{os.getpid()}-{int(gap_s * 1000)}"
    create(api, name, runtime, handler, {"S3Bucket": "hot-reload", "S3Key": str(folder)})
    until(api, name, "v0")
    seen_ms, stale = [], []
    for i in range(1, n + 1):
        time.sleep(random.uniform(0.2, 0.6))
        with open(path, "w") as handle:
            handle.write(template.format(value=f"v{i}"))
        saved = time.perf_counter()
        done, calls = until(api, name, f"v{i}", gap_s)
        seen_ms.append((done - saved) * 1000)
        stale.append(calls)
    return {"seen_ms": seen_ms, "stale_calls": stale}


def redeploy_rounds(api: LambdaApi, kind: str, n: int) -> dict:
    runtime, filename, handler, template = SOURCES[kind]
    name = f"zip-{kind}-{os.getpid()}"

    def package(value: str) -> str:
        return base64.b64encode(zip_bytes({filename: template.format(value=value)})).decode()

    create(api, name, runtime, handler, {"ZipFile": package("v0")})
    until(api, name, "v0")
    seen_ms = []
    for i in range(1, n + 1):
        time.sleep(random.uniform(0.2, 0.6))
        body = json.dumps({"ZipFile": package(f"v{i}")}).encode()
        sent = time.perf_counter()
        status, _, answer = api.request(
            "PUT", f"/2015-03-31/functions/{name}/code", body, {"Content-Type": "application/json"}
        )
        if status != 200:
            raise SystemExit(f"UpdateFunctionCode: {status} {answer[:200]!r}")
        done, _ = until(api, name, f"v{i}")
        seen_ms.append((done - sent) * 1000)
    return {"seen_ms": seen_ms}


def summary(values: list[float]) -> dict:
    return {
        "p50": round(percentile(values, 50), 1),
        "p90": round(percentile(values, 90), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
        "min": round(min(values), 1),
        "n": len(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="edits per runtime (default 40)")
    parser.add_argument("--runtimes", default="python,node")
    parser.add_argument("--lamina-rev", help="measure a snapshot of this commit")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=Path(
            os.environ.get(
                "LAMINA_BENCH_SCRATCH", Path(tempfile.gettempdir()) / "lamina-bench-hot-reload"
            )
        ),
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    cmd = lamina_command(REPO, args.lamina_rev, args.scratch)
    run = args.scratch / f"run-{int(time.time())}"
    server = LaminaServer(cmd, run / "data")
    results: dict = {"rev": args.lamina_rev or git_rev(), "source": cmd.source, "runtimes": {}}
    try:
        api = LambdaApi(f"http://127.0.0.1:{server.port}")
        for kind in args.runtimes.split(","):
            entry: dict = {}
            for mode, gap in (("back-to-back", 0.0), ("every 20 ms", 0.02)):
                hot = hot_rounds(api, kind, run / f"{kind}-folder-{int(gap * 1000)}", args.n, gap)
                entry[mode] = {
                    **summary(hot["seen_ms"]),
                    "stale_calls_p50": percentile(hot["stale_calls"], 50),
                    "stale_calls_max": max(hot["stale_calls"]),
                    "raw_ms": [round(v, 1) for v in hot["seen_ms"]],
                }
            redeploy = redeploy_rounds(api, kind, max(5, args.n // 4))
            entry["redeploy"] = {
                **summary(redeploy["seen_ms"]),
                "raw_ms": [round(v, 1) for v in redeploy["seen_ms"]],
            }
            worst = max(entry["back-to-back"]["p99"], entry["every 20 ms"]["p99"])
            entry["target_p99_under_1s"] = worst < 1000
            results["runtimes"][kind] = entry
            for mode in ("back-to-back", "every 20 ms"):
                h = entry[mode]
                print(
                    f"{kind:7} saved → seen, invoking {mode:13} p50 {h['p50']:6.1f} ms  "
                    f"p90 {h['p90']:6.1f}  p99 {h['p99']:6.1f}  max {h['max']:6.1f}  "
                    f"(n={h['n']}, stale calls p50 {h['stale_calls_p50']}, "
                    f"max {h['stale_calls_max']};  ÷ redeploy p50 "
                    f"{h['p50'] / entry['redeploy']['p50']:.2f})"
                )
            r = entry["redeploy"]
            print(
                f"{kind:7} baseline: UpdateFunctionCode → seen   p50 {r['p50']:6.1f} ms  "
                f"p90 {r['p90']:6.1f}  max {r['max']:6.1f}  (n={r['n']});  target p99 < 1 s: "
                f"{'met' if entry['target_p99_under_1s'] else 'MISSED'}"
            )
        api.close()
    finally:
        server.stop()
    out = (
        args.out or REPO / "bench" / "results" / f"hot-reload-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
