#!/usr/bin/env python3
"""`lamina deploy` of a 20-function SAM application: how long from the command to a stack
in CREATE_COMPLETE (target: under 5 s), a one-function code change, a no-op redeploy and a
destroy, beside a baseline measured in the same run: the same 20 functions made directly
with boto3 against the same engine (CreateFunction with the zip, PublishVersion,
CreateAlias; one call after another, as a script would).

The application (generated in the scratch dir): 20 functions, each with its own CodeUri
folder, AutoPublishAlias, a shared layer, Globals; every 4th function has an SQS queue and
event, every 5th an HttpApi route. One moto server (AWS_ENDPOINT_URL) and one `lamina serve`
are started here and stopped by PID.

  .venv/bin/python bench/deploy.py               # 3 repeats
  .venv/bin/python bench/deploy.py --repeat 1    # quick
  .venv/bin/python bench/deploy.py --compare /tmp/before/src   # A/B in the same run

--compare SRC runs a second engine (and its CLI) from another source tree (`git archive
<commit> src | tar -x -C /tmp/before`), against the same moto server; the two take turns,
repeat by repeat, so that both see the same load.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = 20
ROLE = "arn:aws:iam::123456789012:role/bench"
HANDLER = "import os\n\ndef handler(event, context):\n    return {'n': os.environ['NUM']}\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start")


def application(root: Path) -> Path:
    """The 20-function SAM application, written under `root`."""
    (root / "layer" / "python").mkdir(parents=True)
    (root / "layer" / "python" / "shared.py").write_text("VALUE = 1\n")
    resources = [
        "  Shared:\n    Type: AWS::Serverless::LayerVersion\n    Properties:\n"
        "      LayerName: !Sub '${AWS::StackName}-shared'\n      ContentUri: layer/\n"
    ]
    for n in range(FUNCTIONS):
        folder = root / f"f{n}"
        folder.mkdir()
        (folder / "app.py").write_text(HANDLER)
        events = []
        if n % 4 == 0:
            resources.append(f"  Queue{n}:\n    Type: AWS::SQS::Queue\n")
            events.append(
                f"        Queue:\n          Type: SQS\n          Properties:\n"
                f"            Queue: !GetAtt Queue{n}.Arn\n"
            )
        if n % 5 == 0:
            events.append(
                f"        Http:\n          Type: HttpApi\n          Properties:\n"
                f"            Path: /f{n}\n            Method: GET\n"
            )
        resources.append(
            f"  Function{n}:\n    Type: AWS::Serverless::Function\n    Properties:\n"
            f"      CodeUri: f{n}/\n      Handler: app.handler\n      AutoPublishAlias: live\n"
            f"      Layers: [!Ref Shared]\n      Environment:\n        Variables:\n"
            f"          NUM: '{n}'\n" + ("      Events:\n" + "".join(events) if events else "")
        )
    (root / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n"
        f"    Runtime: python3.{sys.version_info.minor}\n    Timeout: 10\n"
        "Resources:\n" + "".join(resources)
    )
    return root


def source_env(source: Path | None, **extra: str) -> dict[str, str]:
    """The environment that runs Lamina from `source` (a src folder; None: this checkout)."""
    env = dict(os.environ, **extra)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def lamina(*args: str, endpoint: str, source: Path | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lamina", *args, "--endpoint-url", endpoint],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        env=source_env(source),
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lamina {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return took


def baseline(endpoint: str, tag: str) -> float:
    """The same 20 functions (zip, version, alias) made with boto3, one call after another."""
    import boto3

    lam = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    package = buffer.getvalue()
    started = time.perf_counter()
    for n in range(FUNCTIONS):
        name = f"base-{tag}-{n}"
        lam.create_function(
            FunctionName=name,
            Runtime=f"python3.{sys.version_info.minor}",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": package},
            Environment={"Variables": {"NUM": str(n)}},
            Timeout=10,
        )
        version = lam.publish_version(FunctionName=name)["Version"]
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    took = time.perf_counter() - started
    for n in range(FUNCTIONS):
        lam.delete_function(FunctionName=f"base-{tag}-{n}")
    return took


def run(repeat: int, sources: dict[str, Path | None]) -> dict[str, dict[str, list[float]]]:
    """Figures per source (label → kind → seconds), the sources taking turns."""
    scratch = Path(tempfile.mkdtemp(prefix="lamina-bench-deploy-"))
    moto_port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engines: list[subprocess.Popen] = []
    try:
        wait_port(moto_port, moto, "moto")
        endpoints = {}
        for label, source in sources.items():
            port = free_port()
            env = source_env(source, AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}")
            engine = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lamina",
                    "serve",
                    "--port",
                    str(port),
                    "--data-dir",
                    str(scratch / f"data-{label}"),
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            engines.append(engine)
            wait_port(port, engine, f"lamina serve ({label})")
            endpoints[label] = f"http://127.0.0.1:{port}"
        figures: dict[str, dict[str, list[float]]] = {
            label: {k: [] for k in ("deploy", "baseline", "code_change", "no_change", "destroy")}
            for label in sources
        }
        for i in range(repeat):
            for label, source in sources.items():
                endpoint, mine, stack = endpoints[label], figures[label], f"bench{label}{i}"
                app = application(scratch / f"app-{label}{i}")
                mine["baseline"].append(baseline(endpoint, f"{label}{i}"))
                mine["deploy"].append(
                    lamina(
                        "deploy", str(app), "--stack-name", stack, endpoint=endpoint, source=source
                    )
                )
                (app / "f3" / "app.py").write_text(HANDLER + "# changed\n")
                mine["code_change"].append(
                    lamina(
                        "deploy", str(app), "--stack-name", stack, endpoint=endpoint, source=source
                    )
                )
                mine["no_change"].append(
                    lamina(
                        "deploy", str(app), "--stack-name", stack, endpoint=endpoint, source=source
                    )
                )
                mine["destroy"].append(lamina("destroy", stack, endpoint=endpoint, source=source))
        return figures
    finally:
        for proc in (*engines, moto):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="SRC",
        help="also run Lamina from this src folder (the 'before' figures)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sources: dict[str, Path | None] = {"this": None}
    if args.compare is not None:
        sources = {"before": args.compare.resolve(), "this": None}
    figures = run(args.repeat, sources)
    medians = {
        label: {k: statistics.median(v) for k, v in found.items()}
        for label, found in figures.items()
    }
    for label, found in figures.items():
        print(
            f"{label}: 20-function SAM application, {args.repeat} repeat(s), median "
            "(min-max) seconds:"
        )
        for key, values in found.items():
            print(f"  {key:12} {medians[label][key]:6.2f}  ({min(values):.2f}-{max(values):.2f})")
        ratio = medians[label]["deploy"] / medians[label]["baseline"]
        print(
            f"  deploy / boto3 baseline: {ratio:.2f}x; target deploy < 5 s: "
            f"{'met' if medians[label]['deploy'] < 5 else 'MISSED'}"
        )
    if "before" in medians:
        for key in ("deploy", "code_change", "no_change", "destroy"):
            print(f"this / before, {key}: {medians['this'][key] / medians['before'][key]:.2f}x")
    out = args.out or REPO / "bench" / "results" / f"deploy-{int(time.time())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"figures": figures, "medians": medians}, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
