#!/usr/bin/env python3
"""Event source mappings: records/s through SQS and Kinesis mappings beside the source's floor.

Everything runs against one moto server (server mode, started here) and one `lamina serve`
whose AWS_ENDPOINT_URL points at it; a no-op Python function receives the batches. In each
repeat, for each source:

* **floor**: the client library Lamina's pollers use (aiobotocore), alone, in this process,
  reads everything from the same endpoint with the requests Lamina makes. SQS: `--sqs-loops`
  concurrent loops of ReceiveMessage (10 messages, long poll, all attributes) +
  DeleteMessageBatch until the pre-filled queue is drained. Kinesis: DescribeStream, then per
  shard GetShardIterator TRIM_HORIZON and GetRecords (with the `Limit` Lamina's poller uses
  for that batch size) until every record has been read.
* **Lamina**: a mapping on a freshly pre-filled queue (SQS), or a new mapping reading the same
  pre-filled stream from TRIM_HORIZON (Kinesis); the clock runs from the UpdateEventSourceMapping
  call that enables it until the function has seen all N records. The function appends
  `<records> <time>` to a file per batch (one `os.write`), which is how the records it saw
  are counted, with no polling of the engine during the run.

The ratio Lamina ÷ floor is taken inside each repeat and summarized as median (min–max).
The target is ≥ 0.70. The order floor/Lamina is reversed every other repeat.

  .venv/bin/python bench/esm.py                     # 3 repeats, SQS and Kinesis (~2 min)
  .venv/bin/python bench/esm.py --quick             # 1 repeat, smaller N
  .venv/bin/python bench/esm.py --timelines         # + where each batch's time went
  .venv/bin/python bench/esm.py --report bench/results/esm-….json

moto's SQS does O(queue depth) work per message (a ReceiveMessage of 10 took ~0.9 s with
2,000 messages queued); lib/moto_server.py patches that out by default (`--plain-moto` does
not). Servers listen on free loopback ports and are stopped by PID; scratch files live in
$LAMINA_BENCH_SCRATCH (default <tmp>/lamina-bench-esm). Results: bench/results/esm-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# bench/ is sys.path[0] when this runs as a script, and bench/queue.py would then shadow the
# standard library's `queue` (urllib3 imports it): look in bench/ last
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path += [str(BENCH), str(BENCH / "tools")]

from lib import proctree  # noqa: E402
from lib.lambda_api import zip_bytes  # noqa: E402
from lib.report import cell, mmm  # noqa: E402
from lib.servers import LaminaCommand, LaminaServer, MotoServer, lamina_command  # noqa: E402
from lib.stats import git_rev  # noqa: E402
from quiet import busy_pct  # noqa: E402

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/esm-bench"
FUNCTION = "esm-noop"
TARGET = 0.70
HANDLER = """\
import os, time

_out = os.open(os.environ["COUNT_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def handler(event, context):
    os.write(_out, b"%d %.6f\\n" % (len(event["Records"]), time.time()))
"""


@dataclasses.dataclass(frozen=True)
class Case:
    """One Lamina configuration, and the floor it is compared with."""

    name: str
    source: str  # "sqs" or "kinesis"
    batch_size: int
    window: int = 0  # MaximumBatchingWindowInSeconds
    shards: int = 1  # kinesis

    @property
    def floor(self) -> str:
        """The floor key: SQS has one; Kinesis depends on the shards and GetRecords Limit."""
        if self.source == "sqs":
            return "sqs"
        return f"kinesis {self.shards} shard{'s' if self.shards > 1 else ''} limit {self.limit}"

    @property
    def limit(self) -> int:
        return min(10_000, max(100, self.batch_size))  # as pollers/streams.py asks


CASES = [
    Case("sqs batch 10", "sqs", 10),
    Case("sqs batch 100 window 1 s", "sqs", 100, window=1),
    Case("kinesis 1 shard batch 100", "kinesis", 100),
    Case("kinesis 1 shard batch 1000", "kinesis", 1000),
    Case("kinesis 4 shards batch 100", "kinesis", 100, shards=4),
]
# only with --cases: a batch smaller than one GetRecords response (see docs/PERFORMANCE.md,
# "Event source mappings"); its time grows with the square of the backlog, so use a small
# --kinesis-n (8000 takes ~20 s)
EXTRA_CASES = [
    Case("kinesis 1 shard batch 10", "kinesis", 10),
]


# --------------------------------------------------------------------------- CPU accounting
def _stat_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as handle:
        values = [int(x) for x in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values[:8]) - idle, sum(values[:8])


class CpuWatch:
    """CPU seconds used during a run by moto, the engine, its runtimes, this process, and the
    machine as a whole (so the share used by other load can be told apart)."""

    def __init__(self, moto_pid: int, engine_pid: int | None) -> None:
        self.moto_pid, self.engine_pid = moto_pid, engine_pid

    def _read(self) -> dict[str, float]:
        times = os.times()
        found = {"moto": _stat_cpu(self.moto_pid), "bench": times.user + times.system}
        if self.engine_pid is not None:
            found["engine"] = _stat_cpu(self.engine_pid)
            found["runtimes"] = sum(_stat_cpu(p) for p in proctree.descendants(self.engine_pid))
        busy, total = _machine_cpu()
        found["machine_busy"], found["machine_total"] = busy, total
        return found

    def __enter__(self) -> CpuWatch:
        self.before = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._read()
        total = after.pop("machine_total") - self.before.pop("machine_total")
        busy = after.pop("machine_busy") - self.before.pop("machine_busy")
        self.used = {k: round(after[k] - self.before[k], 3) for k in after}
        self.machine_busy_pct = round(100 * busy / total, 1) if total else None
        ours = sum(self.used.values()) * os.sysconf("SC_CLK_TCK")
        self.other_busy_pct = round(100 * max(0.0, busy - ours) / total, 1) if total else None


# --------------------------------------------------------------------------- the sources
class Sources:
    """aiobotocore clients on moto (the floor's clients, and the fillers)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    async def __aenter__(self) -> Sources:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        self._session = get_session()
        self._contexts = {}
        self.clients = {}
        for service in ("sqs", "kinesis"):
            context = self._session.create_client(
                service,
                region_name=REGION,
                endpoint_url=self.endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                config=AioConfig(retries={"total_max_attempts": 1}),
            )
            self._contexts[service] = context
            self.clients[service] = await context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for context in self._contexts.values():
            await context.__aexit__(None, None, None)

    @property
    def sqs(self):  # noqa: ANN201
        return self.clients["sqs"]

    @property
    def kinesis(self):  # noqa: ANN201
        return self.clients["kinesis"]

    # SQS --------------------------------------------------------------------------------
    async def new_queue(self, n: int) -> tuple[str, str]:
        """A queue holding n messages: (url, arn)."""
        name = f"esm-{uuid.uuid4().hex[:10]}"
        url = (await self.sqs.create_queue(QueueName=name))["QueueUrl"]
        arn = (await self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        batches = [list(range(first, min(n, first + 10))) for first in range(0, n, 10)]

        async def sender(mine: list[list[int]]) -> None:
            for numbers in mine:
                response = await self.sqs.send_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(k), "MessageBody": json.dumps({"n": number})}
                        for k, number in enumerate(numbers)
                    ],
                )
                assert not response.get("Failed"), response

        await asyncio.gather(*(sender(batches[k::4]) for k in range(4)))
        depth = await self.depth(url)
        assert depth == (n, 0), f"queue filled with {depth}, wanted {n}"
        return url, arn

    async def depth(self, url: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        found = (
            await self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
        )["Attributes"]
        return (
            int(found["ApproximateNumberOfMessages"]),
            int(found["ApproximateNumberOfMessagesNotVisible"]),
        )

    async def sqs_floor(self, url: str, n: int, loops: int) -> dict:
        """Receive (10, long poll, all attributes) and delete (batch) n messages with `loops`
        concurrent loops on one client, as the poller does; the time until all are deleted."""
        done = 0
        receives = 0
        marks: list[tuple[int, float]] = []
        finished = asyncio.get_running_loop().create_future()
        started = time.time()

        async def loop() -> None:
            nonlocal done, receives
            while not finished.done():
                response = await self.sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=20,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                receives += 1
                messages = response.get("Messages", [])
                if not messages:
                    continue
                deleted = await self.sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]}
                        for k, m in enumerate(messages)
                    ],
                )
                assert not deleted.get("Failed"), deleted
                done += len(messages)
                marks.append((len(messages), time.time()))
                if done >= n and not finished.done():
                    finished.set_result(time.time())

        tasks = [asyncio.ensure_future(loop()) for _ in range(loops)]
        try:
            ended = await asyncio.wait_for(asyncio.shield(finished), 600)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {
            "records": done,
            "seconds": ended - started,
            "requests": receives,
            "steady_records_per_s": steady_rate(marks, n),
        }

    # Kinesis ----------------------------------------------------------------------------
    async def new_stream(self, shards: int, n: int) -> tuple[str, str]:
        """A stream with `shards` shards holding n records: (name, arn)."""
        name = f"esm-{uuid.uuid4().hex[:10]}"
        await self.kinesis.create_stream(StreamName=name, ShardCount=shards)
        for first in range(0, n, 500):
            response = await self.kinesis.put_records(
                StreamName=name,
                Records=[
                    {"Data": json.dumps({"n": k}).encode(), "PartitionKey": f"key-{k}"}
                    for k in range(first, min(n, first + 500))
                ],
            )
            assert not response.get("FailedRecordCount"), response
        arn = (await self.kinesis.describe_stream(StreamName=name))["StreamDescription"][
            "StreamARN"
        ]
        return name, arn

    async def kinesis_floor(self, stream: str, n: int, limit: int) -> dict:
        """DescribeStream, then per shard GetShardIterator(TRIM_HORIZON) + GetRecords(limit)
        until n records are read (each shard read to its end)."""
        read = 0
        calls = 0
        ended = 0.0
        marks: list[tuple[int, float]] = []
        started = time.time()
        description = (await self.kinesis.describe_stream(StreamName=stream))["StreamDescription"]

        async def reader(shard: str) -> None:
            nonlocal read, calls, ended
            iterator = (
                await self.kinesis.get_shard_iterator(
                    StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
                )
            )["ShardIterator"]
            while iterator and read < n:
                response = await self.kinesis.get_records(ShardIterator=iterator, Limit=limit)
                calls += 1
                records = response.get("Records", [])
                if not records:
                    return  # this shard is read to its end
                read += len(records)
                marks.append((len(records), time.time()))
                if read >= n:
                    ended = time.time()
                iterator = response.get("NextShardIterator")

        await asyncio.gather(*(reader(s["ShardId"]) for s in description["Shards"]))
        assert read >= n, f"read {read} of {n} records"
        return {
            "records": read,
            "seconds": ended - started,
            "requests": calls,
            "steady_records_per_s": steady_rate(marks, n),
        }


# --------------------------------------------------------------------------- Lamina
class Lamina:
    """The engine, its boto3 Lambda client and the no-op function's count file."""

    def __init__(
        self, cmd: LaminaCommand, data_dir: Path, moto_endpoint: str, extra: list[str]
    ) -> None:
        import boto3
        from botocore.config import Config

        env = {**cmd.env, "AWS_ENDPOINT_URL": moto_endpoint}
        self.server = LaminaServer(dataclasses.replace(cmd, env=env), data_dir, extra)
        self.lam = boto3.client(
            "lambda",
            endpoint_url=self.server.endpoint,
            region_name=REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(read_timeout=120, retries={"total_max_attempts": 1}),
        )
        self.count_file = data_dir.parent / "counts"
        self.count_file.write_bytes(b"")
        self.lam.create_function(
            FunctionName=FUNCTION,
            Runtime="python3.11",
            Role=ROLE,
            Handler="lambda_function.handler",
            Timeout=10,
            MemorySize=256,
            Code={"ZipFile": zip_bytes({"lambda_function.py": HANDLER})},
            Environment={"Variables": {"COUNT_FILE": str(self.count_file)}},
        )
        self.lam.get_waiter("function_active_v2").wait(
            FunctionName=FUNCTION, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
        )

    def stop(self) -> None:
        self.lam.close()
        self.server.stop()

    def run(self, arn: str, n: int, case: Case, loops: int | None, timeout: float) -> dict:
        """Create the mapping disabled, then enable it and wait until the function has seen
        n records; delete it (which waits for the batch in flight)."""
        settings: dict = {"BatchSize": case.batch_size}
        if case.window:
            settings["MaximumBatchingWindowInSeconds"] = case.window
        if case.source == "kinesis":
            settings["StartingPosition"] = "TRIM_HORIZON"
        elif loops is not None:
            settings["ScalingConfig"] = {"MaximumConcurrency": loops}
        mapping = self.lam.create_event_source_mapping(
            FunctionName=FUNCTION, EventSourceArn=arn, Enabled=False, **settings
        )["UUID"]
        self._wait_state(mapping, "Disabled")
        offset = self.count_file.stat().st_size
        started = time.time()
        self.lam.update_event_source_mapping(UUID=mapping, Enabled=True)
        deadline = time.monotonic() + timeout
        seen, ended, batches = 0, None, 0
        while ended is None:
            if time.monotonic() > deadline:
                self.lam.delete_event_source_mapping(UUID=mapping)
                raise TimeoutError(f"{case.name}: the function saw {seen} of {n} records")
            time.sleep(0.02)
            seen, ended, batches = self._count(offset, n)
        self.lam.delete_event_source_mapping(UUID=mapping)
        self._wait_gone(mapping)
        seen, _, batches = self._count(offset, n)
        return {
            "records": n,
            "seen": seen,
            "duplicates": seen - n,
            "batches": batches,
            "seconds": ended - started,
            "mapping": mapping,
            "started": started,
            "first_batch_s": round(self._marks(offset)[0][1] - started, 4),
            "steady_records_per_s": steady_rate(self._marks(offset), n),
        }

    def _marks(self, offset: int) -> list[tuple[int, float]]:
        """(records, time) of each batch the function saw since offset."""
        with open(self.count_file, "rb") as handle:
            handle.seek(offset)
            return [
                (int(count), float(at))
                for count, at in (line.split() for line in handle.read().splitlines())
            ]

    def _count(self, offset: int, n: int) -> tuple[int, float | None, int]:
        """(records seen since offset, when the n-th was seen, batches)."""
        marks = self._marks(offset)
        seen, ended = 0, None
        for count, at in marks:
            seen += count
            if ended is None and seen >= n:
                ended = at
        return seen, ended, len(marks)

    def _wait_state(self, mapping: str, state: str) -> None:
        for _ in range(500):
            if self.lam.get_event_source_mapping(UUID=mapping)["State"] == state:
                return
            time.sleep(0.01)
        raise TimeoutError(f"mapping {mapping} did not become {state}")

    def _wait_gone(self, mapping: str) -> None:
        for _ in range(3000):
            listed = self.lam.list_event_source_mappings(FunctionName=FUNCTION)
            if all(m["UUID"] != mapping for m in listed["EventSourceMappings"]):
                return
            time.sleep(0.01)
        raise TimeoutError(f"mapping {mapping} was not deleted")

    def timelines(self, since: float, case: Case) -> dict:
        """Where the batches' time went, from the engine's records (after the run)."""
        import urllib.request

        def get(path: str) -> dict:
            with urllib.request.urlopen(self.server.endpoint + path, timeout=60) as response:
                return json.loads(response.read())

        listed = get(
            f"/_lamina/invocations?function={FUNCTION}&type=mapping&since={since}&limit=10000"
        )["Invocations"]
        batches = []
        for summary in listed:
            timeline = get(f"/_lamina/invocations/{summary['RequestId']}")["Timeline"]
            kinds = {e["Kind"]: e for e in timeline}
            if "accepted" not in kinds or "attempt" not in kinds:
                continue
            accepted, attempt = kinds["accepted"]["At"], kinds["attempt"]
            entry = {
                "accepted": accepted,
                "attempt_end": attempt["At"],
                "duration_ms": attempt["duration_ms"],
                "records": kinds["accepted"].get("records"),
                "start": attempt.get("start"),
                "finished": summary.get("FinishedAt"),
            }
            if "deleted" in kinds:
                entry["deleted"] = kinds["deleted"]["At"]
            batches.append(entry)
        batches.sort(key=lambda b: b["accepted"])
        if not batches:
            return {}
        span = (
            batches[-1]["finished"] - batches[0]["accepted"]
            if batches[-1].get("finished")
            else None
        )

        def median_ms(values: list[float]) -> float | None:
            return round(statistics.median(values) * 1000, 3) if values else None

        found = {
            "batches": len(batches),
            "cold_starts": sum(1 for b in batches if b["start"] == "cold"),
            "first_accepted_after_enable_ms": None,
            "span_s": round(span, 3) if span else None,
            "function_duration_ms_median": round(
                statistics.median(b["duration_ms"] for b in batches), 3
            ),
            # accepted → attempt recorded: the invoke as the poller waits for it
            "invoke_ms_median": median_ms([b["attempt_end"] - b["accepted"] for b in batches]),
            "invoke_s_total": round(sum(b["attempt_end"] - b["accepted"] for b in batches), 3),
        }
        deletes = [b["deleted"] - b["attempt_end"] for b in batches if "deleted" in b]
        if deletes:
            found["delete_ms_median"] = median_ms(deletes)
            found["delete_s_total"] = round(sum(deletes), 3)
        # gaps between consecutive batches of one shard (Kinesis: one reader per shard)
        if case.source == "kinesis" and case.shards == 1:
            gaps = [
                b2["accepted"] - b1["finished"]
                for b1, b2 in itertools.pairwise(batches)
                if b1.get("finished")
            ]
            found["between_batches_ms_median"] = median_ms(gaps)
            found["between_batches_s_total"] = round(sum(gaps), 3)
        return found


# --------------------------------------------------------------------------- one repeat
async def _floor_run(
    args: argparse.Namespace,
    case: Case,
    sources: Sources,
    moto: MotoServer,
    streams: dict[int, tuple[str, str]],
) -> dict:
    """The case's source read by a plain client (no Lamina): the floor."""
    if case.source == "sqs":
        url, _ = await sources.new_queue(args.sqs_n)
        with CpuWatch(moto.pid, None) as cpu:
            run = await sources.sqs_floor(url, args.sqs_n, args.sqs_loops)
        left = await sources.depth(url)
        await sources.sqs.delete_queue(QueueUrl=url)
        run["left_in_queue"] = sum(left)
    else:
        stream, _ = streams[case.shards]
        with CpuWatch(moto.pid, None) as cpu:
            run = await sources.kinesis_floor(stream, args.kinesis_n, case.limit)
    run.update(_rates(run, cpu))
    return run


async def _lamina_source(
    args: argparse.Namespace, case: Case, sources: Sources, streams: dict[int, tuple[str, str]]
) -> tuple[str | None, str, int]:
    """(queue URL or None, source ARN, records) for the case's run through Lamina."""
    if case.source == "sqs":
        url, arn = await sources.new_queue(args.sqs_n)
        return url, arn, args.sqs_n
    _, arn = streams[case.shards]
    return None, arn, args.kinesis_n


async def repeat_once(
    number: int,
    args: argparse.Namespace,
    cases: list[Case],
    sources: Sources,
    lamina: Lamina,
    moto: MotoServer,
    streams: dict[int, tuple[str, str]],
) -> dict:
    result: dict = {
        "repeat": number,
        "busy_pct_before": round(busy_pct(0.5), 1),
        "floor": {},
        "lamina": {},
    }
    reverse = number % 2 == 1

    async def floor(key: str, case: Case) -> None:
        if key in result["floor"]:
            return
        run = await _floor_run(args, case, sources, moto, streams)
        result["floor"][key] = run
        print(
            f"  floor  {key:<40} {run['records_per_s']:8.0f} records/s "
            f"({run['records']} in {run['seconds']:.2f} s)",
            flush=True,
        )

    async def through_lamina(case: Case) -> None:
        url, arn, n = await _lamina_source(args, case, sources, streams)
        with CpuWatch(moto.pid, lamina.server.pid) as cpu:
            run = lamina.run(
                arn, n, case, args.sqs_loops if args.sqs_loops != 5 else None, args.timeout
            )
        if url is not None:
            run["left_in_queue"] = sum(await sources.depth(url))
            await sources.sqs.delete_queue(QueueUrl=url)
        run.update(_rates(run, cpu))
        if args.timelines:
            await asyncio.sleep(0.5)  # the recorder flushes every 0.2 s
            run["timelines"] = lamina.timelines(run["started"], case)
        result["lamina"][case.name] = run
        extra = f", {run['duplicates']} duplicates" if run["duplicates"] else ""
        print(
            f"  lamina {case.name:<40} {run['records_per_s']:8.0f} records/s "
            f"({n} in {run['seconds']:.2f} s, {run['batches']} batches{extra})",
            flush=True,
        )

    for source in ("sqs", "kinesis"):
        mine = [c for c in cases if c.source == source]
        if not mine:
            continue
        # floor first, then Lamina; every other repeat the other way round
        for case in reversed(mine) if reverse else mine:
            if not reverse:
                await floor(case.floor, case)
            await through_lamina(case)
            if reverse:
                await floor(case.floor, case)
    return result


def steady_rate(marks: list[tuple[int, float]], n: int) -> float | None:
    """Records/s between the moments 10 % and 90 % of n had been seen: the rate without the
    start (clients, loops scaling up) and the end (the last, partial batches)."""
    seen, t10, t90 = 0, None, None
    for count, at in marks:
        seen += count
        if t10 is None and seen >= 0.1 * n:
            t10, seen10 = at, seen
        if t90 is None and seen >= 0.9 * n:
            t90, seen90 = at, seen
    if t10 is None or t90 is None or t90 <= t10:
        return None
    return round((seen90 - seen10) / (t90 - t10), 1)


def _rates(run: dict, cpu: CpuWatch) -> dict:
    records = run["records"]
    return {
        "records_per_s": round(records / run["seconds"], 1),
        "cpu_s": cpu.used,
        "cpu_us_per_record": {k: round(v / records * 1e6, 1) for k, v in cpu.used.items()},
        "machine_busy_pct": cpu.machine_busy_pct,
        "other_busy_pct": cpu.other_busy_pct,
    }


async def prime(
    sources: Sources,
    lamina: Lamina,
    cases: list[Case],
    streams: dict[int, tuple[str, str]],
    args: argparse.Namespace,
) -> None:
    """An untimed small run per source: clients created, environments started."""
    for source in ("sqs", "kinesis"):
        case = next((c for c in cases if c.source == source), None)
        if case is None:
            continue
        if source == "sqs":
            url, _ = await sources.new_queue(100)
            await sources.sqs_floor(url, 100, args.sqs_loops)
            await sources.sqs.delete_queue(QueueUrl=url)
            url, arn = await sources.new_queue(200)
            lamina.run(arn, 200, case, args.sqs_loops if args.sqs_loops != 5 else None, 60)
            await sources.sqs.delete_queue(QueueUrl=url)
        else:
            stream, arn = await sources.new_stream(1, 200)
            await sources.kinesis_floor(stream, 200, 100)
            lamina.run(arn, 200, dataclasses.replace(case, shards=1), None, 60)
            await sources.kinesis.delete_stream(StreamName=stream)


async def measure(args: argparse.Namespace, cases: list[Case], scratch: Path) -> dict:
    cmd = lamina_command(REPO, args.lamina_rev, scratch)
    if args.cprofile:
        cmd = LaminaCommand(
            [sys.executable, "-m", "cProfile", "-o", str(args.cprofile.resolve()), "-m", "lamina"],
            cmd.env,
            f"{cmd.source}, engine under cProfile",
        )
    moto = MotoServer(scratch / "moto.log", plain=args.plain_moto)
    lamina = None
    try:
        lamina = Lamina(cmd, scratch / "engine" / "data", moto.endpoint, args.serve_args)
        async with Sources(moto.endpoint) as sources:
            streams = {}
            for shards in sorted({c.shards for c in cases if c.source == "kinesis"}):
                started = time.monotonic()
                streams[shards] = await sources.new_stream(shards, args.kinesis_n)
                print(
                    f"stream of {shards} shard(s) with {args.kinesis_n} records in "
                    f"{time.monotonic() - started:.1f} s",
                    flush=True,
                )
            await prime(sources, lamina, cases, streams, args)
            repeats = []
            for number in range(args.repeat):
                print(f"repeat {number + 1}/{args.repeat}", flush=True)
                repeats.append(
                    await repeat_once(number, args, cases, sources, lamina, moto, streams)
                )
        return {
            "lamina": cmd.source,
            "repeats": repeats,
            "engine_log_tracebacks": "Traceback"
            in lamina.server.log_path.read_text(errors="replace"),
        }
    finally:
        if lamina is not None:
            lamina.stop()
        moto.stop()


# --------------------------------------------------------------------------- report
def summarize(results: dict) -> dict:
    cases = [Case(**c) for c in results["cases"]]
    repeats = results["repeats"]
    rows = []
    for case in cases:
        floors = [r["floor"].get(case.floor, {}).get("records_per_s") for r in repeats]
        lamina = [r["lamina"].get(case.name, {}).get("records_per_s") for r in repeats]
        ratio = [a / b if a and b else None for a, b in zip(lamina, floors)]
        steady_floor = [r["floor"].get(case.floor, {}).get("steady_records_per_s") for r in repeats]
        steady = [r["lamina"].get(case.name, {}).get("steady_records_per_s") for r in repeats]
        steady_ratio = [a / b if a and b else None for a, b in zip(steady, steady_floor)]
        first = [r["lamina"].get(case.name, {}).get("first_batch_s") for r in repeats]
        met = sum(1 for x in ratio if x is not None and x >= TARGET)
        counted = sum(1 for x in ratio if x is not None)
        rows.append(
            {
                "case": case.name,
                "floor_key": case.floor,
                "floor": mmm(floors),
                "lamina": mmm(lamina),
                "ratio": mmm(ratio),
                "met": met,
                "of": counted,
                "steady_floor": mmm(steady_floor),
                "steady_lamina": mmm(steady),
                "steady_ratio": mmm(steady_ratio),
                "first_batch_ms": mmm([x * 1000 for x in first if x is not None]),
                "verdict": None
                if not counted
                else (
                    "PASS"
                    if statistics.median(x for x in ratio if x is not None) >= TARGET
                    else "MISS"
                ),
            }
        )
    return {"rows": rows}


def cpu_table(results: dict) -> list[str]:
    cases = [Case(**c) for c in results["cases"]]
    repeats = results["repeats"]
    lines = [
        "| run | moto µs/record | client (floor) µs/record | engine µs/record | "
        "runtimes µs/record | machine busy % | other load % |",
        "|---|---|---|---|---|---|---|",
    ]
    seen_floors = []
    for case in cases:
        for kind, key in (("floor", case.floor), ("lamina", case.name)):
            if kind == "floor":
                if key in seen_floors:
                    continue
                seen_floors.append(key)
            runs = [r[kind].get(key) for r in repeats if r[kind].get(key)]

            def pick(name: str, runs: list = runs) -> str:
                return cell(mmm([r["cpu_us_per_record"].get(name) for r in runs]))

            lines.append(
                f"| {kind}: {key} | {pick('moto')} | "
                f"{pick('bench') if kind == 'floor' else '-'} | "
                f"{pick('engine') if kind == 'lamina' else '-'} | "
                f"{pick('runtimes') if kind == 'lamina' else '-'} | "
                f"{cell(mmm([r['machine_busy_pct'] for r in runs]))} | "
                f"{cell(mmm([r['other_busy_pct'] for r in runs]))} |"
            )
    return lines


def timeline_table(results: dict) -> list[str]:
    cases = [Case(**c) for c in results["cases"]]
    rows = []
    for case in cases:
        runs = [
            r["lamina"][case.name]["timelines"]
            for r in results["repeats"]
            if r["lamina"].get(case.name, {}).get("timelines")
        ]
        if not runs:
            continue

        def pick(key: str, fmt: str = "%.1f", runs: list = runs) -> str:
            return cell(mmm([t.get(key) for t in runs]), fmt)

        rows.append(
            f"| {case.name} | {pick('batches', '%.0f')} | "
            f"{pick('function_duration_ms_median', '%.2f')} | "
            f"{pick('invoke_ms_median', '%.2f')} | {pick('invoke_s_total', '%.2f')} | "
            f"{pick('delete_ms_median', '%.2f')} | {pick('delete_s_total', '%.2f')} | "
            f"{pick('between_batches_ms_median', '%.2f')} | "
            f"{pick('between_batches_s_total', '%.2f')} |"
        )
    if not rows:
        return []
    return [
        "| case | batches | function ms (median) | invoke ms (median) | invoke s (sum) | "
        "delete ms (median) | delete s (sum) | between batches ms (median, 1 shard) | "
        "between batches s (sum) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def print_report(results: dict) -> None:
    summary = summarize(results)
    print(
        f"\nEvent source mappings, {len(results['repeats'])} repeat(s), "
        f"SQS N={results['args']['sqs_n']} (loops {results['args']['sqs_loops']}), "
        f"Kinesis N={results['args']['kinesis_n']}; {results['lamina']}; moto "
        f"{'plain' if results['args']['plain_moto'] else 'patched (lib/moto_server.py)'}\n"
    )
    print(
        "| case | floor (same run) | floor records/s | Lamina records/s | Lamina ÷ floor | "
        f"target ≥ {TARGET:.2f} |"
    )
    print("|---|---|---|---|---|---|")
    for row in summary["rows"]:
        verdict = f"{row['verdict']} ({row['met']}/{row['of']})" if row["verdict"] else "-"
        print(
            f"| {row['case']} | {row['floor_key']} | {cell(row['floor'])} | "
            f"{cell(row['lamina'])} | {cell(row['ratio'], '%.2f')} | {verdict} |"
        )
    print(
        "\nSteady state: records/s between 10 % and 90 % of the records (no start, no "
        "last batches), and Lamina's first batch after enabling:\n"
    )
    print("| case | floor records/s | Lamina records/s | Lamina ÷ floor | first batch ms |")
    print("|---|---|---|---|---|")
    for row in summary["rows"]:
        print(
            f"| {row['case']} | {cell(row['steady_floor'])} | {cell(row['steady_lamina'])} | "
            f"{cell(row['steady_ratio'], '%.2f')} | {cell(row['first_batch_ms'])} |"
        )
    print("\nCPU per record during each run (median (min–max) over repeats):\n")
    print("\n".join(cpu_table(results)))
    timelines = timeline_table(results)
    if timelines:
        print("\nLamina's batches, from the engine's records (per run, median (min–max)):\n")
        print("\n".join(timelines))
    dups = [
        (c, r["lamina"][c]["duplicates"])
        for r in results["repeats"]
        for c in r["lamina"]
        if r["lamina"][c]["duplicates"]
    ]
    left = [
        (c, r["lamina"][c]["left_in_queue"])
        for r in results["repeats"]
        for c in r["lamina"]
        if r["lamina"][c].get("left_in_queue")
    ]
    print(
        f"\nduplicates: {dups or 'none'}; messages left in a queue after a Lamina run: "
        f"{left or 'none'}; tracebacks in the engine log: "
        f"{'YES' if results.get('engine_log_tracebacks') else 'no'}"
    )


def print_profile(path: Path, top: int = 30) -> None:
    import io
    import pstats

    if not path.exists():
        print(f"\n(no profile written at {path})")
        return
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).strip_dirs().sort_stats(order).print_stats(top)
        text = out.getvalue()
        print(f"\nengine profile, by {order}:\n" + text[text.find("   ncalls") :])


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[1:]),
    )
    ap.add_argument("--repeat", type=int, help="repeats (default 3)")
    ap.add_argument("--sqs-n", type=int, help="messages per SQS run (5000)")
    ap.add_argument("--kinesis-n", type=int, help="records in each Kinesis stream (30000)")
    ap.add_argument(
        "--sqs-loops",
        type=int,
        default=5,
        help="concurrent receive loops of the SQS floor, and the mapping's "
        "ScalingConfig.MaximumConcurrency (default 5, Lamina's default)",
    )
    ap.add_argument("--skip-sqs", action="store_true", help="leave SQS out")
    ap.add_argument("--skip-kinesis", action="store_true", help="leave Kinesis out")
    ap.add_argument(
        "--cases",
        help="comma-separated case names to run (default: all but "
        "the extra 'kinesis 1 shard batch 10')",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="defaults of 1 repeat, 2000 SQS messages, 10000 Kinesis records",
    )
    ap.add_argument(
        "--timelines",
        action="store_true",
        help="after each Lamina run, read its batches' timelines from the engine "
        "(where the time went; slower)",
    )
    ap.add_argument(
        "--plain-moto",
        action="store_true",
        help="run moto unpatched (its SQS is O(queue depth) per message)",
    )
    ap.add_argument("--lamina-rev", help="measure a snapshot of this commit (see invoke.py)")
    ap.add_argument(
        "--serve-arg",
        dest="serve_args",
        action="append",
        default=[],
        help="extra argument for `lamina serve` (repeatable), e.g. --serve-arg=--no-records",
    )
    ap.add_argument(
        "--cprofile",
        type=Path,
        help="run the engine under cProfile (its event-loop thread), write the "
        "stats to this file and print the top functions; it slows the "
        "engine, so that run's ratios are not the figures",
    )
    ap.add_argument("--timeout", type=float, default=300, help="seconds per Lamina run (300)")
    ap.add_argument(
        "--scratch",
        type=Path,
        help="scratch dir (default $LAMINA_BENCH_SCRATCH or <tmp>/lamina-bench-esm)",
    )
    ap.add_argument("--out", type=Path, help="JSON file (default bench/results/esm-<time>.json)")
    ap.add_argument("--report", type=Path, help="print the tables of an earlier JSON and stop")
    args = ap.parse_args(argv)
    if args.report:
        print_report(json.loads(args.report.read_text()))
        return
    for key, full, quick in (("repeat", 3, 1), ("sqs_n", 5000, 2000), ("kinesis_n", 30000, 10000)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    wanted = args.cases.split(",") if args.cases else None
    unknown = set(wanted or ()) - {c.name for c in CASES + EXTRA_CASES}
    if unknown:
        ap.error(
            f"unknown case(s) {sorted(unknown)}; cases: "
            f"{', '.join(c.name for c in CASES + EXTRA_CASES)}"
        )
    cases = [
        c
        for c in (CASES + EXTRA_CASES if wanted else CASES)
        if not (args.skip_sqs and c.source == "sqs")
        and not (args.skip_kinesis and c.source == "kinesis")
        and (wanted is None or c.name in wanted)
    ]
    scratch = args.scratch or Path(
        os.environ.get("LAMINA_BENCH_SCRATCH") or Path(tempfile.gettempdir()) / "lamina-bench-esm"
    )
    scratch = scratch / time.strftime("%Y%m%d-%H%M%S")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    rev = git_rev()
    started = time.time()
    results = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "head": rev,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cases": [dataclasses.asdict(c) for c in cases],
    }
    results.update(asyncio.run(measure(args, cases, scratch)))
    results["took_s"] = round(time.time() - started, 1)
    out = args.out or BENCH / "results" / f"esm-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print_report(results)
    if args.cprofile:
        print_profile(args.cprofile)
    print(f"\n(took {results['took_s']:.0f} s; raw: {out}; scratch: {scratch})")


if __name__ == "__main__":
    main()
