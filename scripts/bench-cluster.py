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
"""
import argparse
import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("judgebox")
    ap.add_argument("--n", type=int, default=300)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="judgebox-bench-cluster.")
    os.chmod(work, 0o755)
    pg = None
    try:
        pg = Postgres(work)
        sqlite = rate(a.judgebox, work, a.n, None, 0)
        one = rate(a.judgebox, work, a.n, pg.new_db("one"), 1)
        two = rate(a.judgebox, work, a.n, pg.new_db("two"), 2)
        sqlite2 = rate(a.judgebox, work, a.n, None, 0, count=2)
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\njudgebox serve cluster: {a.n} Python A+B submissions, COUNT=1 per worker process"
          " (submissions/s)")
    print(f"  {'SQLite, one process':<48} {sqlite:8.1f}")
    print(f"  {'PostgreSQL, API process + 1 worker process':<48} {one:8.1f}")
    print(f"  {'PostgreSQL, API process + 2 worker processes':<48} {two:8.1f}")
    print(f"  {'SQLite, one process, COUNT=2 (reference)':<48} {sqlite2:8.1f}")
    print(f"  postgres/sqlite at one worker = {one / sqlite:.2f}x (target >= 0.90x)")
    print(f"  two workers/one = {two / one:.2f}x (target >= 1.70x);"
          f" SQLite COUNT=2/COUNT=1 = {sqlite2 / sqlite:.2f}x on this machine")


if __name__ == "__main__":
    sys.exit(main())
