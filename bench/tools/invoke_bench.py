#!/usr/bin/env python3
"""Client-side benchmark for a Lambda-API-compatible invoke endpoint.

Measures, against ENDPOINT and FUNCTION:
  * first_call_ms  - latency of the very first call this process makes
                     (a cold start if the server was just started);
  * latency        - p50/p90/p99 of N sequential calls after a warm-up;
  * throughput     - calls/s with C concurrent clients for each C given
                     (threads, each with its own boto3 client or its own
                     keep-alive HTTP connection), bounded by a duration
                     and a call count.

Modes:
  --mode sync    InvocationType=RequestResponse, expects 200 and no
                 X-Amz-Function-Error header.
  --mode async   InvocationType=Event, expects 202; "throughput" is then
                 the accept rate.

Clients:
  --client raw   http.client, one keep-alive connection per thread,
                 POST /2015-03-31/functions/NAME/invocations (unsigned).
  --client boto3 one boto3 "lambda" client per thread (SigV4 signed with
                 dummy credentials, retries disabled).

With --repeat R the whole measurement is repeated R times and a summary
(min/median/max across repeats) is added.  With --server-pids the CPU
time consumed by those processes and all their descendants during each
throughput window is reported, as CPU microseconds per call
(server_cpu_us_per_call), and that of the listed processes alone
(server_main_cpu_us_per_call: the engine without its runtimes).

Copied from shared/bench/tools/invoke_bench.py into Lamina's bench/tools/;
the one change is server_main_cpu_us_per_call.

Prints exactly one JSON line on stdout.  Only loopback endpoints are
accepted unless --allow-non-loopback is given.
"""

import argparse
import http.client
import json
import math
import os
import resource
import socket
import statistics
import sys
import threading
import time
import urllib.parse

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------


def pct(sorted_vals, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def lat_summary(samples_s):
    """Latency summary in microseconds from a list of seconds."""
    if not samples_s:
        return {"n": 0}
    us = sorted(x * 1e6 for x in samples_s)
    return {
        "n": len(us),
        "min": round(us[0], 1),
        "p50": round(pct(us, 50), 1),
        "p90": round(pct(us, 90), 1),
        "p99": round(pct(us, 99), 1),
        "max": round(us[-1], 1),
        "mean": round(statistics.fmean(us), 1),
    }


def clock_ticks():
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


def _proc_table():
    """pid -> (ppid, utime+stime ticks) for every readable process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read().decode("ascii", "replace")
        except OSError:
            continue
        rp = data.rfind(")")
        fields = data[rp + 2 :].split()
        # fields[0] is state (field 3); ppid is field 4, utime 14, stime 15
        try:
            ppid = int(fields[1])
            ticks = int(fields[11]) + int(fields[12])
        except (IndexError, ValueError):
            continue
        table[int(name)] = (ppid, ticks)
    return table


def tree_cpu_seconds(root_pids):
    """CPU seconds (user+sys) of root_pids and all their live descendants."""
    if not root_pids:
        return None
    table = _proc_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen = set()
    stack = list(root_pids)
    total = 0
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total / float(clock_ticks())


def own_cpu_seconds(pids):
    """CPU seconds (user+sys) of the listed processes alone, no descendants."""
    if not pids:
        return None
    table = _proc_table()
    return sum(table[p][1] for p in pids if p in table) / float(clock_ticks())


def self_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# --------------------------------------------------------------------------
# clients: each has .call() -> (ok, status, detail) and .close()
# --------------------------------------------------------------------------


class RawClient:
    """One keep-alive HTTP/1.1 connection, unsigned Lambda Invoke requests."""

    def __init__(self, endpoint, function, payload, invocation_type, timeout):
        u = urllib.parse.urlsplit(endpoint)
        if u.scheme != "http":
            raise SystemExit("raw client supports http:// endpoints only")
        self.host = u.hostname
        self.port = u.port or 80
        base = u.path.rstrip("/")
        self.path = "%s/2015-03-31/functions/%s/invocations" % (
            base,
            urllib.parse.quote(function, safe=""),
        )
        self.body = payload
        self.expect = 202 if invocation_type == "Event" else 200
        self.headers = {
            "Content-Type": "application/json",
            "X-Amz-Invocation-Type": invocation_type,
            "Content-Length": str(len(payload)),
        }
        self.timeout = timeout
        self.conn = None
        self.reconnects = 0

    def _connect(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.connect()
        # disable Nagle: requests are small and latency matters
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _once(self):
        self.conn.request("POST", self.path, body=self.body, headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.will_close:
            self.conn.close()
            self.conn = None
        return resp.status, resp.getheader("X-Amz-Function-Error"), data

    def call(self):
        fresh = False
        if self.conn is None:
            self._connect()
            fresh = True
        try:
            status, ferr, data = self._once()
        except (
            http.client.RemoteDisconnected,
            ConnectionResetError,
            BrokenPipeError,
            http.client.CannotSendRequest,
            http.client.BadStatusLine,
        ):
            if fresh:
                raise
            # server closed an idle keep-alive connection: reconnect once
            self.reconnects += 1
            self._connect()
            status, ferr, data = self._once()
        ok = status == self.expect and not ferr
        return ok, status, ferr

    def close(self):
        if self.conn is not None:
            self.conn.close()


class Boto3Client:
    """One boto3 lambda client (its own session and connection pool)."""

    def __init__(self, endpoint, function, payload, invocation_type, timeout, region):
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("BENCH_AWS_ACCESS_KEY_ID", "bench"),
            aws_secret_access_key=os.environ.get("BENCH_AWS_SECRET_ACCESS_KEY", "bench"),
            region_name=region,
        )
        cfg = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
            max_pool_connections=2,
            tcp_keepalive=True,
        )
        self.client = session.client("lambda", endpoint_url=endpoint, config=cfg)
        self.function = function
        self.payload = payload
        self.invocation_type = invocation_type
        self.expect = 202 if invocation_type == "Event" else 200
        self.reconnects = 0

    def call(self):
        from botocore.exceptions import ClientError

        try:
            r = self.client.invoke(
                FunctionName=self.function,
                InvocationType=self.invocation_type,
                Payload=self.payload,
            )
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return False, status, e.response.get("Error", {}).get("Code")
        r["Payload"].read()
        status = r.get("StatusCode", 0)
        ferr = r.get("FunctionError")
        return status == self.expect and not ferr, status, ferr

    def close(self):
        try:
            self.client.close()
        except Exception:
            pass


def make_client(args, invocation_type):
    if args.client == "raw":
        return RawClient(
            args.endpoint, args.function, args.payload_bytes, invocation_type, args.timeout
        )
    return Boto3Client(
        args.endpoint, args.function, args.payload_bytes, invocation_type, args.timeout, args.region
    )


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------


def timed_call(client, status_counts, lock=None):
    t0 = time.perf_counter()
    try:
        ok, status, detail = client.call()
    except Exception as e:  # noqa: BLE001 - any transport failure is an error sample
        ok, status, detail = False, "exc:" + type(e).__name__, str(e)[:120]
    dt = time.perf_counter() - t0
    key = str(status) + ("/" + str(detail) if detail and not ok else "")
    if lock is not None:
        with lock:
            status_counts[key] = status_counts.get(key, 0) + 1
    else:
        status_counts[key] = status_counts.get(key, 0) + 1
    return ok, dt


def sequential(args, invocation_type, client, first_call):
    status_counts = {}
    out = {}
    if first_call:
        ok, dt = timed_call(client, status_counts)
        out["first_call_ms"] = round(dt * 1e3, 3)
        out["first_call_ok"] = ok
    deadline = time.perf_counter() + args.max_seconds
    for _ in range(args.warmup):
        if time.perf_counter() > deadline:
            break
        timed_call(client, status_counts)
    samples, errors = [], 0
    t_start = time.perf_counter()
    for _ in range(args.n):
        if time.perf_counter() > deadline:
            break
        ok, dt = timed_call(client, status_counts)
        if ok:
            samples.append(dt)
        else:
            errors += 1
    elapsed = time.perf_counter() - t_start
    out["latency_us"] = lat_summary(samples)
    out["sequential_errors"] = errors
    out["sequential_calls_per_s"] = round(len(samples) / elapsed, 1) if elapsed > 0 else None
    out["status_counts"] = status_counts
    return out


def warm_up(args, c, warm_counts, lock):
    """One client's warm-up: at least tp_warmup_min calls (so that the server has had to
    serve `concurrency` calls at once), at least tp_warmup_s seconds, at most
    tp_warmup_calls calls or tp_warmup_max_s seconds."""
    w0 = time.perf_counter()
    wdl = w0 + args.tp_warmup_s
    hard = w0 + args.tp_warmup_max_s
    for k in range(max(1, args.tp_warmup_calls)):
        timed_call(c, warm_counts, lock)
        now = time.perf_counter()
        if now >= hard or (now >= wdl and k + 1 >= args.tp_warmup_min):
            break


def throughput(args, invocation_type, concurrency, server_pids):
    clients = [make_client(args, invocation_type) for _ in range(concurrency)]
    per_calls = max(1, args.max_calls // concurrency)
    lock = threading.Lock()
    status_counts, warm_counts = {}, {}
    results = [None] * concurrency
    # two phases, both with all clients running at once: a warm-up (lets the
    # server scale out to `concurrency` environments and opens connections),
    # then the measured window
    warm_barrier = threading.Barrier(concurrency + 1)
    barrier = threading.Barrier(concurrency + 1)
    window = {}

    def worker(i):
        c = clients[i]
        warm_barrier.wait()
        warm_up(args, c, warm_counts, lock)
        lats, errs = [], 0
        barrier.wait()
        deadline = window["deadline"]
        for _ in range(per_calls):
            if time.perf_counter() >= deadline:
                break
            ok, dt = timed_call(c, status_counts, lock)
            if ok:
                lats.append(dt)
            else:
                errs += 1
        results[i] = (lats, errs, time.perf_counter())

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    tw0 = time.perf_counter()
    warm_barrier.wait()
    # wait for every thread to finish its warm-up and park on the barrier
    while barrier.n_waiting < concurrency:
        if not any(t.is_alive() for t in threads):
            break
        time.sleep(0.001)
    cpu_srv0 = tree_cpu_seconds(server_pids)
    cpu_main0 = own_cpu_seconds(server_pids)
    cpu_self0 = self_cpu_seconds()
    t0 = time.perf_counter()
    warmup_s = t0 - tw0
    window["deadline"] = t0 + args.duration
    barrier.wait()
    for t in threads:
        t.join(args.duration + args.timeout + 5)
    t1 = max((r[2] for r in results if r), default=time.perf_counter())
    cpu_self1 = self_cpu_seconds()
    cpu_srv1 = tree_cpu_seconds(server_pids)
    cpu_main1 = own_cpu_seconds(server_pids)
    for c in clients:
        c.close()
    lats = [x for r in results if r for x in r[0]]
    errs = sum(r[1] for r in results if r)
    elapsed = t1 - t0
    ok_calls = len(lats)
    res = {
        "concurrency": concurrency,
        "ok_calls": ok_calls,
        "errors": errs,
        "seconds": round(elapsed, 3),
        "calls_per_s": round(ok_calls / elapsed, 1) if elapsed > 0 else None,
        "latency_us": lat_summary(lats),
        "client_cpu_pct": round(100.0 * (cpu_self1 - cpu_self0) / elapsed, 1)
        if elapsed > 0
        else None,
        "status_counts": status_counts,
        "warmup_status_counts": warm_counts,
        "warmup_s": round(warmup_s, 3),
    }
    if server_pids and cpu_srv0 is not None and ok_calls:
        srv = cpu_srv1 - cpu_srv0
        res["server_cpu_pct"] = round(100.0 * srv / elapsed, 1)
        res["server_cpu_us_per_call"] = round(srv * 1e6 / ok_calls, 1)
        res["server_main_cpu_us_per_call"] = round((cpu_main1 - cpu_main0) * 1e6 / ok_calls, 1)
    return res


def one_run(args, invocation_type, first_call, server_pids):
    client = make_client(args, invocation_type)
    run = sequential(args, invocation_type, client, first_call)
    client.close()
    run["throughput"] = [
        throughput(args, invocation_type, c, server_pids) for c in args.concurrency
    ]
    return run


def summarize(runs):
    """min/median/max across repeats of the headline figures."""

    def mmm(vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        return {"min": min(vals), "median": round(statistics.median(vals), 1), "max": max(vals)}

    s = {}
    for key in ("p50", "p90", "p99"):
        s["latency_%s_us" % key] = mmm([r["latency_us"].get(key) for r in runs])
    if any("first_call_ms" in r for r in runs):
        s["first_call_ms"] = mmm([r.get("first_call_ms") for r in runs])
    for i, tp in enumerate(runs[0]["throughput"]):
        c = tp["concurrency"]
        s["calls_per_s_c%d" % c] = mmm([r["throughput"][i]["calls_per_s"] for r in runs])
        if "server_cpu_us_per_call" in tp:
            s["server_cpu_us_per_call_c%d" % c] = mmm(
                [r["throughput"][i].get("server_cpu_us_per_call") for r in runs]
            )
    return s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint", default=os.environ.get("BENCH_ENDPOINT", "http://127.0.0.1:3002"))
    ap.add_argument("--function", required=True, help="function name as the endpoint knows it")
    ap.add_argument("--client", choices=("raw", "boto3"), default="raw")
    ap.add_argument("--mode", choices=("sync", "async"), default="sync")
    ap.add_argument("--payload", default='{"hello":"world"}', help="JSON payload (string)")
    ap.add_argument("--warmup", type=int, default=20, help="sequential warm-up calls")
    ap.add_argument("-n", "--n", type=int, default=300, help="sequential measured calls")
    ap.add_argument(
        "--concurrency", default="1,4,16", help="comma list, e.g. 1,4,16; empty for none"
    )
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per throughput window")
    ap.add_argument("--max-calls", type=int, default=20000, help="call bound per throughput window")
    ap.add_argument(
        "--tp-warmup-s",
        type=float,
        default=1.0,
        help="seconds of concurrent warm-up before each throughput window",
    )
    ap.add_argument(
        "--tp-warmup-calls", type=int, default=200, help="call bound per client for that warm-up"
    )
    ap.add_argument(
        "--tp-warmup-min",
        type=int,
        default=3,
        help="calls each client must complete in that warm-up (scale-out)",
    )
    ap.add_argument(
        "--tp-warmup-max-s", type=float, default=60.0, help="hard time bound for that warm-up"
    )
    ap.add_argument(
        "--max-seconds", type=float, default=120.0, help="time bound for the sequential part"
    )
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request socket timeout")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument(
        "--first-call",
        action="store_true",
        help="record the first call separately as first_call_ms (cold start)",
    )
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--server-pids",
        default="",
        help="comma list of server PIDs; CPU of them and descendants is reported",
    )
    ap.add_argument("--label", default="", help="free text copied into the output")
    ap.add_argument("--allow-non-loopback", action="store_true")
    args = ap.parse_args(argv)

    host = urllib.parse.urlsplit(args.endpoint).hostname or ""
    if host not in LOOPBACK_HOSTS and not host.startswith("127.") and not args.allow_non_loopback:
        raise SystemExit("refusing non-loopback endpoint %r" % args.endpoint)
    args.payload_bytes = args.payload.encode()
    args.concurrency = [int(x) for x in args.concurrency.split(",") if x.strip()]
    args.n = max(1, min(args.n, 1_000_000))
    server_pids = [int(p) for p in args.server_pids.split(",") if p.strip()]
    invocation_type = "Event" if args.mode == "async" else "RequestResponse"

    runs = []
    for r in range(max(1, args.repeat)):
        runs.append(one_run(args, invocation_type, args.first_call and r == 0, server_pids))

    out = {
        "tool": "invoke_bench",
        "label": args.label,
        "endpoint": args.endpoint,
        "function": args.function,
        "client": args.client,
        "mode": args.mode,
        "payload_bytes": len(args.payload_bytes),
        "warmup": args.warmup,
        "n": args.n,
        "duration_s": args.duration,
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": runs,
    }
    out["summary"] = summarize(runs)
    print(json.dumps(out, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
