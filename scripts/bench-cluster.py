#!/usr/bin/env python3
"""`judgebox serve` on PostgreSQL against the embedded SQLite backend, in one run (compare
the ratios; absolute rates drift on a shared machine).

    scripts/bench-cluster.py JUDGEBOX [--n 300]

N Python A+B submissions through the API (batch create, then batch polling), in turn:
1. SQLite, one process, COUNT=1;
2. PostgreSQL, an API process and one worker process (COUNT=1);
3. PostgreSQL, an API process and two worker processes (COUNT=1 each);
4. SQLite, one process, COUNT=2: what two workers gain on this machine without a
   database between processes (the ceiling the 2-worker figure is compared with).
PostgreSQL is a throwaway server (Debian's binaries, initdb as nobody, loopback only).
Targets: PostgreSQL >= 0.9x SQLite at one worker; two workers >= 1.7x one.

The four take turns in --rounds rounds (default 5) and each ratio is the median of the
rounds' ratios, as this machine's speed drifts by tens of percent within minutes. Around
the two PostgreSQL phases the CPU's own ceiling is probed: a CPU-bound loop alone, then two
at once (2 x the one's time / the pair's); and so is the bare workload's: the same Python
A+B run on the host with no sandbox, server or database, one loop, then two at once. Two
workers cannot gain more than the machine gives two processes at once: on a host whose two
vCPUs share one core's throughput that is ~1.2x, whatever the software.
"""
import argparse
import glob
import json
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_serve", os.path.join(HERE, "bench-serve.py"))
bench_serve = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_serve)


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("bench-cluster: PostgreSQL is not installed (scripts/install-deps.sh)")
    return os.path.dirname(found[-1])


class Postgres:
    """initdb in `work`/pg as nobody; started on loopback; stop() stops it."""

    def __init__(self, work):
        self.bin = pg_bin()
        self.dir = os.path.join(work, "pg")
        os.mkdir(self.dir)
        shutil.chown(self.dir, "nobody", "nogroup")
        self.port = bench_serve.free_port()
        self.nobody("initdb", "-D", self.dir + "/data", "-U", "postgres", "--auth=trust",
                    "--no-sync")
        with open(self.dir + "/data/postgresql.auto.conf", "w") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nmax_connections = 100\n")
        self.nobody("pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/log", "-w", "start")

    def nobody(self, tool, *args):
        subprocess.run(["runuser", "-u", "nobody", "--", f"{self.bin}/{tool}", *args],
                       cwd=self.dir, check=True, stdout=subprocess.DEVNULL)

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def new_db(self, name):
        subprocess.run([f"{self.bin}/psql", "-q", "-h", self.dir, "-p", str(self.port),
                        "-U", "postgres", "-c", f"CREATE DATABASE {name}"], check=True)
        return self.url(name)

    def stop(self):
        subprocess.run(["runuser", "-u", "nobody", "--", f"{self.bin}/pg_ctl", "-D",
                        self.dir + "/data", "stop", "-m", "immediate"],
                       cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Processes:
    """judgebox serve processes, each with its log; stop() ends them all."""

    def __init__(self, jb, work, n, count=1):
        self.jb, self.work, self.procs = jb, work, []
        self.env = dict(os.environ, COUNT=str(count), MAX_QUEUE_SIZE=str(n * 2),
                        MAX_SUBMISSION_BATCH_SIZE="100")

    def start(self, *args):
        log = open(f"{self.work}/serve-{len(self.procs)}.log", "w")
        p = subprocess.Popen([self.jb, "serve", *args], env=self.env, stderr=log)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []


def wait_up(base):
    for _ in range(400):
        try:
            bench_serve.call(base, "GET", "/about")
            return
        except Exception:
            time.sleep(0.05)
    sys.exit(f"bench-cluster: {base} did not answer")


def wait_workers(base, n):
    for _ in range(400):
        _, v = bench_serve.call(base, "GET", "/workers")
        if v[0]["available"] >= n:
            return
        time.sleep(0.05)
    sys.exit(f"bench-cluster: fewer than {n} workers joined")


def rate(jb, work, n, database, workers, count=1):
    """Submissions/s through one API process, with `workers` worker processes (0: SQLite,
    one process that also judges, with `count` worker threads)."""
    procs = Processes(jb, work, n, count)
    port = bench_serve.free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        if workers == 0:
            api = procs.start("--listen", f"127.0.0.1:{port}", "--db",
                              f"{work}/db-{count}.sqlite")
            wait_up(base)
        else:
            subprocess.run([jb, "serve", "--database", database, "--migrate"], check=True,
                           stdout=subprocess.DEVNULL)
            api = procs.start("--listen", f"127.0.0.1:{port}", "--database", database,
                              "--role", "api")
            for _ in range(workers):
                procs.start("--database", database, "--role", "worker")
            wait_up(base)
            wait_workers(base, workers)
        # Warm-up: one submission judged end to end.
        bench_serve.call(base, "POST", "/submissions?wait=true",
                         {"source_code": bench_serve.HELLO, "language_id": 71})
        per_s, _ = bench_serve.serve_throughput(base, api.pid, n)
        return per_s
    finally:
        procs.stop()


# A CPU-bound loop of ~0.3 s in the interpreter the submissions use (its start-up is ~1%).
SPIN = [sys.executable, "-c", "sum(range(9_000_000))"]


def spin_seconds(copies):
    """Wall seconds until `copies` CPU-bound loops started together have all finished."""
    start = time.monotonic()
    procs = [subprocess.Popen(SPIN) for _ in range(copies)]
    for p in procs:
        p.wait()
    return time.monotonic() - start


def ceiling():
    """What two processes at once get done on this machine against one: 2 x t(1) / t(2)."""
    return 2 * spin_seconds(1) / spin_seconds(2)


def floor_rate(rootfs, copies, runs=40):
    """The submissions' own work with no sandbox, server or database: the same Python A+B
    with the image's interpreter (chroot into its rootfs), `runs` times in each of `copies`
    loops at once; runs/s."""
    def loop():
        for i in range(runs):
            subprocess.run(["chroot", rootfs, "/usr/bin/python3", "-c", bench_serve.SOL],
                           input=f"{i} {i * 3}".encode(), stdout=subprocess.DEVNULL,
                           check=True)
    threads = [threading.Thread(target=loop) for _ in range(copies)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return copies * runs / (time.monotonic() - start)


def floor_gain(rootfs):
    """What two loops of the bare workload get done at once against one."""
    return floor_rate(rootfs, 2) / floor_rate(rootfs, 1)


def python_rootfs(jb):
    out = subprocess.run([jb, "image", "inspect", "judgebox/python3:bookworm", "--json"],
                         check=True, capture_output=True).stdout
    return json.loads(out)["rootfs"]


def median(xs):
    xs = sorted(xs)
    return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("judgebox")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="judgebox-bench-cluster.")
    os.chmod(work, 0o755)
    pg = None
    rounds = []
    rootfs = python_rootfs(a.judgebox)
    try:
        pg = Postgres(work)
        for r in range(a.rounds):
            sqlite = rate(a.judgebox, work, a.n, None, 0)
            probe, bare = [ceiling()], [floor_gain(rootfs)]
            one = rate(a.judgebox, work, a.n, pg.new_db(f"one{r}"), 1)
            probe.append(ceiling())
            bare.append(floor_gain(rootfs))
            two = rate(a.judgebox, work, a.n, pg.new_db(f"two{r}"), 2)
            probe.append(ceiling())
            bare.append(floor_gain(rootfs))
            sqlite2 = rate(a.judgebox, work, a.n, None, 0, count=2)
            rounds.append((sqlite, one, two, sqlite2, sum(probe) / len(probe),
                           sum(bare) / len(bare)))
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\njudgebox serve cluster: {a.n} Python A+B submissions, COUNT=1 per worker process"
          f" (submissions/s), {a.rounds} rounds")
    rows = ["SQLite, one process", "PostgreSQL, API process + 1 worker process",
            "PostgreSQL, API process + 2 worker processes",
            "SQLite, one process, COUNT=2 (reference)",
            "CPU ceiling: two loops at once / one (x)",
            "bare Python A+B: two loops at once / one (x)"]
    for i, label in enumerate(rows):
        print(f"  {label:<48} " + " ".join(f"{r[i]:8.2f}" for r in rounds))
    pg_sqlite = median([r[1] / r[0] for r in rounds])
    two_one = median([r[2] / r[1] for r in rounds])
    ref = median([r[3] / r[0] for r in rounds])
    cpu = median([r[4] for r in rounds])
    bare = median([r[5] for r in rounds])
    print(f"  postgres/sqlite at one worker = {pg_sqlite:.2f}x (target >= 0.90x)")
    print(f"  two workers/one = {two_one:.2f}x (target >= 1.70x); SQLite COUNT=2/COUNT=1 ="
          f" {ref:.2f}x; the CPU's own ceiling {cpu:.2f}x; the bare workload's"
          f" {bare:.2f}x (medians over the rounds)")


if __name__ == "__main__":
    sys.exit(main())
