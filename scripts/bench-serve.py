#!/usr/bin/env python3
"""`judgebox serve` throughput and latency against `judgebox judge` and the unsandboxed host,
all in one run (compare the ratios; absolute times drift on a shared machine).

    scripts/bench-serve.py JUDGEBOX [--n 500] [--workers 2] [--rounds R]

1. N Python A+B submissions through the API (batch create, then batch polling) at COUNT=W:
   submissions/s, and the server's peak RSS with N queued. The time is the server's own,
   from the first submission's created_at to the last finished_at (millisecond stamps):
   the client learns of the end only at its next poll (every 0.2 s), a lag that is the
   client's, not the server's, and would be up to 10% of a 2 s run.
2. The same N programs through `judgebox judge` (one invocation each, W at a time).
3. The same N programs run unsandboxed on the host (python3, W at a time).
4. p50/p99 latency of `wait=true` for a Python hello, sequential, against the median
   unsandboxed `python3 hello.py` run time.

With --rounds R, steps 1 and 2 alternate R times (serve first in odd rounds, judge first
in even ones), so load from other processes falls on both alike; each round's
serve/judge ratio is printed with their range.
"""
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SOL = "a, b = map(int, input().split())\nprint(a + b)\n"
HELLO = 'print("hello")\n'


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.status, json.loads(r.read() or b"null")


def rss_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def serve_throughput(base, pid, n):
    bodies = [{"source_code": SOL, "language_id": 71, "stdin": f"{i} {i * 3}",
               "expected_output": str(i * 4)} for i in range(n)]
    start = time.monotonic()
    tokens = []
    for k in range(0, n, 100):
        code, answer = call(base, "POST", "/submissions/batch", {"submissions": bodies[k:k + 100]})
        assert code == 201, answer
        tokens += [t["token"] for t in answer]
    rss_queued = rss_kib(pid, "VmRSS")
    pending = list(tokens)
    statuses = {}
    first_created, last_finished = None, None
    while pending:
        batch = pending[:100]
        _, answer = call(base, "GET", "/submissions/batch?fields=token,status,created_at,"
                         "finished_at&tokens=" + ",".join(batch))
        for s in answer["submissions"]:
            if s["status"]["id"] > 2:
                statuses[s["token"]] = s["status"]["id"]
                created, finished = stamp(s["created_at"]), stamp(s["finished_at"])
                first_created = min(first_created or created, created)
                last_finished = max(last_finished or finished, finished)
        pending = [t for t in pending if t not in statuses]
        if pending:
            time.sleep(0.2)
    polled = time.monotonic() - start
    elapsed = last_finished - first_created
    assert 0 < elapsed <= polled + 0.05, (elapsed, polled)
    bad = [v for v in statuses.values() if v != 3]
    assert not bad, f"{len(bad)} submissions were not accepted: {bad[:5]}"
    return n / elapsed, rss_queued


def stamp(iso):
    """Seconds since the epoch of a Judge0 timestamp (`2026-12-04T06:08:53.079Z`)."""
    from datetime import datetime
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def files(work, n):
    for i in range(n):
        with open(f"{work}/{i}.in", "w") as f:
            f.write(f"{i} {i * 3}\n")
        with open(f"{work}/{i}.out", "w") as f:
            f.write(f"{i * 4}\n")
    with open(f"{work}/sol.py", "w") as f:
        f.write(SOL)
    with open(f"{work}/hello.py", "w") as f:
        f.write(HELLO)


def pool_rate(n, workers, one):
    start = time.monotonic()
    with cf.ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(one, range(n)))
    elapsed = time.monotonic() - start
    assert all(results), f"{results.count(False)} runs failed"
    return n / elapsed


def cli_rate(jb, work, n, workers):
    def one(i):
        r = subprocess.run([jb, "judge", "--lang", "python3", f"{work}/sol.py", "--stdin",
                            f"{work}/{i}.in", "--expected", f"{work}/{i}.out", "--parallel", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0
    return pool_rate(n, workers, one)


def host_python():
    """The distribution's python3 (a version manager's shim would add its own start-up)."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")


def host_rate(work, n, workers):
    py = host_python()

    def one(i):
        with open(f"{work}/{i}.in") as stdin:
            out = subprocess.run([py, f"{work}/sol.py"], stdin=stdin, capture_output=True).stdout
        with open(f"{work}/{i}.out", "rb") as f:
            return out.strip() == f.read().strip()
    return pool_rate(n, workers, one)


def wait_latency(base, runs):
    times = []
    for _ in range(runs):
        start = time.monotonic()
        code, v = call(base, "POST", "/submissions?wait=true&fields=status,stdout",
                       {"source_code": HELLO, "language_id": 71})
        times.append((time.monotonic() - start) * 1000)
        assert code == 201 and v["status"]["id"] == 3, v
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def host_hello_ms(work, runs):
    py = host_python()
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run([py, f"{work}/hello.py"], stdout=subprocess.DEVNULL)
        times.append((time.monotonic() - start) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("judgebox")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--latency-runs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="judgebox-bench-serve.")
    port = free_port()
    env = dict(os.environ, COUNT=str(a.workers), MAX_QUEUE_SIZE=str(a.n * 2),
               MAX_SUBMISSION_BATCH_SIZE="100")
    log = open(f"{work}/serve.log", "w")
    server = subprocess.Popen([a.judgebox, "serve", "--listen", f"127.0.0.1:{port}",
                               "--db", f"{work}/db.sqlite"], env=env, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                call(base, "GET", "/version")
                break
            except Exception:
                time.sleep(0.05)
        files(work, a.n)
        call(base, "POST", "/submissions?wait=true", {"source_code": HELLO, "language_id": 71})
        rounds = []
        for r in range(max(1, a.rounds)):
            if r % 2 == 0:
                serve, rss = serve_throughput(base, server.pid, a.n)
                cli = cli_rate(a.judgebox, work, a.n, a.workers)
            else:
                cli = cli_rate(a.judgebox, work, a.n, a.workers)
                serve, rss = serve_throughput(base, server.pid, a.n)
            rounds.append((serve, cli))
            if a.rounds > 1:
                print(f"round {r + 1}: serve {serve:.1f}/s, judge {cli:.1f}/s,"
                      f" serve/judge {serve / cli:.2f}x", flush=True)
        serve = statistics.median(s for s, _ in rounds)
        cli = statistics.median(c for _, c in rounds)
        peak = rss_kib(server.pid, "VmHWM")
        host = host_rate(work, a.n, a.workers)
        p50, p99 = wait_latency(base, a.latency_runs)
        hello = host_hello_ms(work, a.latency_runs)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\njudgebox serve: {a.n} Python A+B submissions, COUNT={a.workers} (submissions/s)")
    print(f"  {'serve (batch create + polling)':<44} {serve:8.1f}")
    print(f"  {'judgebox judge, one per program, P' + str(a.workers):<44} {cli:8.1f}")
    print(f"  {'unsandboxed python3 on the host, P' + str(a.workers):<44} {host:8.1f}")
    ratios = sorted(s / c for s, c in rounds)
    print(f"  serve/judge = {serve / cli:.2f}x (target >= 0.90x); serve/host = {serve / host:.2f}x")
    if len(rounds) > 1:
        print(f"  medians of {len(rounds)} interleaved rounds; serve/judge per round"
              f" {ratios[0]:.2f}x .. {ratios[-1]:.2f}x (median {statistics.median(ratios):.2f}x)")
    print(f"  server RSS with {a.n} queued: {rss / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB (target <= 64 MiB)")
    target = 1.5 * hello + 5
    print(f"wait=true latency, Python hello, sequential ({a.latency_runs} runs):"
          f" p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"  unsandboxed python3 hello: {hello:.1f} ms; target p50 <= 1.5x + 5 ms = {target:.1f} ms"
          f" ({'met' if p50 <= target else 'not met'}); p50/host = {p50 / hello:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
