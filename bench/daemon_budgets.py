#!/usr/bin/env python3
"""Measures codriverd against the standing budgets: start to READY, idle RSS with one phone
connected, idle CPU. Runs the release binary in --simulate mode (mock Bluetooth, simulated
phone connected over Hands-Free, null audio) with a real NOTIFY_SOCKET and its D-Bus API served
on a private system-like bus (tests/dbus/system-like.conf), never the machine's bus.

    python3 bench/daemon_budgets.py [--runs N] [--idle-seconds S]

Prints one line per run and the medians. Build first: cargo build --release -p codriver-daemon
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"),
                   "release", "codriverd")
TICKS = os.sysconf("SC_CLK_TCK")


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def private_bus():
    conf = os.path.join(ROOT, "tests", "dbus", "system-like.conf")
    bus = subprocess.Popen(["dbus-daemon", "--config-file", conf, "--nofork", "--print-address=1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return bus, bus.stdout.readline().strip()


def one_run(idle_seconds, address):
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "codriver.toml")
        with open(cfg, "w") as f:
            f.write('[audio]\noutput_backend = "null"\n\n'
                    f'[simulation]\noutput_directory = "{tmp}"\n')
        sock_path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET=sock_path, DBUS_SYSTEM_BUS_ADDRESS=address)
        env.pop("JOURNAL_STREAM", None)
        log = open(os.path.join(tmp, "log"), "w+")
        t0 = time.monotonic()
        proc = subprocess.Popen([BIN, "--simulate", "--config", cfg, "--log-level", "info"],
                                env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            while True:
                msg = sock.recv(4096).decode()
                if "READY=1" in msg.splitlines():
                    ready_ms = (time.monotonic() - t0) * 1000
                    break
            deadline = time.monotonic() + 10
            while "hands-free-ready" not in open(log.name).read() or \
                    "D-Bus API ready" not in open(log.name).read():
                if time.monotonic() > deadline:
                    raise RuntimeError("the simulated phone never connected")
                time.sleep(0.05)
            # Let start-up settle: chimes, allocations, and codriverd paging out its set-up code
            # 2 s after the connection (daemon/src/memory.rs).
            time.sleep(3)
            rss = status_kb(proc.pid, "VmRSS")
            t1, c1 = time.monotonic(), cpu_ticks(proc.pid)
            time.sleep(idle_seconds)
            t2, c2 = time.monotonic(), cpu_ticks(proc.pid)
            cpu = 100.0 * (c2 - c1) / TICKS / (t2 - t1)
            hwm = status_kb(proc.pid, "VmHWM")
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
        finally:
            proc.terminate()
            proc.wait(timeout=5)
        return ready_ms, rss, hwm, cpu, threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-seconds", type=float, default=10)
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} missing: cargo build --release -p codriver-daemon")
    rows = []
    bus, address = private_bus()
    for i in range(args.runs):
        try:
            r = one_run(args.idle_seconds, address)
        except Exception:
            bus.kill()
            raise
        rows.append(r)
        print(f"run {i + 1}: ready {r[0]:.1f} ms, idle RSS {r[1] / 1024:.2f} MiB "
              f"(peak {r[2] / 1024:.2f} MiB), idle CPU {r[3]:.2f}% over {args.idle_seconds:.0f} s, "
              f"{r[4]} threads")
    bus.kill()
    med = [statistics.median(c) for c in zip(*rows)]
    print(f"median: start to READY {med[0]:.1f} ms (budget 150), idle RSS with one phone "
          f"{med[1] / 1024:.2f} MiB (budget 6), peak {med[2] / 1024:.2f} MiB, idle CPU "
          f"{med[3]:.2f}% (budget 0)")


if __name__ == "__main__":
    main()
