#!/usr/bin/env python3
"""Time from a process's start to the first HTTP request a loopback server receives.

    first-request.py --runs N --out FILE.json [--warmup W] [--template SRC:DEST] [--prepare SHELL]
                     [--first-probe-log] [--timeout S] [--keep] -- COMMAND ARG...

One HTTP server (this process, a thread, 127.0.0.1, any free port) answers every GET with 200 and
an empty body. For each run: a fresh directory is made; `--prepare` (a bash command, not timed)
runs in it, after each --template SRC:DEST has been copied to DEST in it with the placeholders
below filled in; then COMMAND is started and the clock runs from just before the spawn until the
server has read the first request's request line. The command is then killed (its whole process
group) if it has not exited; a command that exits without having sent a request is an error.

In COMMAND, --prepare and templates, `{url}` is the server's URL and `{dir}` the run's directory; both are
also in the environment as BENCH_URL and BENCH_DIR. The command's stdout and stderr go to
{dir}/stdout and {dir}/stderr.

--first-probe-log: the command is firedrill with FIREDRILL_LOG=json; also collect the
`since_process_start_ms` of its `first probe` log line (logged just before the request is sent,
timed from main(), so it leaves out exec, loading and the connection).

Writes {"runs": [seconds...], "median": s, "warmup": [...], "first_probe_log_ms": [...]} to --out.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

first = {"at": None}
arrived = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        # The request line and headers have been read: this is when the request was received.
        if not arrived.is_set():
            first["at"] = time.perf_counter()
            arrived.set()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed client resets its keep-alive connection: expected


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def first_probe_ms(stderr_path, wait=2.0):
    """The `first probe` log line's figure; the line may land just after the request does."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(stderr_path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    fields = entry.get("fields", entry)
                    if fields.get("message") == "first probe":
                        return fields.get("since_process_start_ms")
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


def one_run(args, url, base):
    run_dir = tempfile.mkdtemp(prefix="run-", dir=base)
    env = dict(os.environ, BENCH_URL=url, BENCH_DIR=run_dir)
    fill = lambda s: s.replace("{url}", url).replace("{dir}", run_dir)
    for template in args.template:
        src, dest = template.split(":", 1)
        with open(src) as f, open(os.path.join(run_dir, dest), "w") as g:
            g.write(fill(f.read()))
    if args.prepare:
        subprocess.run(["bash", "-c", fill(args.prepare)], cwd=run_dir, env=env, check=True)
    command = [fill(a) for a in args.command]
    arrived.clear()
    first["at"] = None
    with open(os.path.join(run_dir, "stdout"), "wb") as out, open(os.path.join(run_dir, "stderr"), "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=run_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        deadline = started + args.timeout
        while not arrived.wait(0.005):
            if proc.poll() is not None and not arrived.is_set():
                tail = open(os.path.join(run_dir, "stderr"), errors="replace").read()[-2000:]
                sys.exit(f"error: {command[0]} exited {proc.returncode} before any request:\n{tail}")
            if time.perf_counter() > deadline:
                kill_group(proc)
                sys.exit(f"error: no request within {args.timeout}s from {' '.join(command)}")
        took = first["at"] - started
        probe_ms = first_probe_ms(os.path.join(run_dir, "stderr")) if args.first_probe_log else None
        if proc.poll() is None:
            kill_group(proc)
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return took, probe_ms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--template", action="append", default=[])
    p.add_argument("--prepare")
    p.add_argument("--first-probe-log", action="store_true")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--keep", action="store_true", help="keep the run directories")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        p.error("no command")

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    base = tempfile.mkdtemp(prefix="firedrill-first-request-")
    try:
        warmup = [one_run(args, url, base)[0] for _ in range(args.warmup)]
        results = []
        for i in range(args.runs):
            took, probe_ms = one_run(args, url, base)
            print(f"  run {i + 1}/{args.runs}: {took * 1000:.1f} ms", file=sys.stderr)
            results.append((took, probe_ms))
    finally:
        server.shutdown()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    runs = [t for t, _ in results]
    logged = [m for _, m in results if m is not None]
    with open(args.out, "w") as f:
        json.dump({"runs": runs, "median": statistics.median(runs), "warmup": warmup,
                   "first_probe_log_ms": logged}, f)


if __name__ == "__main__":
    main()
