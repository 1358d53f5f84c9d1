#!/usr/bin/env python3
"""Trellis benchmark suite.

One command (`bench/run`) builds what it needs, runs every benchmark side by side with its
baseline in the same run, and writes docs/performance.md (with an SVG plot) and
docs/performance.json. Benchmarks are plain functions registered in BENCHMARKS; each returns a
markdown section and raw numbers, so later ones (cross-host calls) slot into the same report.

Nothing here is a pass/fail test: the figures are measurements, reported as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
if not TARGET.is_absolute():
    TARGET = REPO / TARGET
TOOLS = TARGET / "bench-tools"
WASMTIME_VERSION = "48.0.8"  # must match the wasmtime in Cargo.lock
WASMTIME_FEATURES = "serve,run,component-model-async,cranelift,pooling-allocator,parallel-compilation,component-model,cache,demangle,addr2line,backtrace"
TRELLIS = TARGET / "release" / "trellis"
HELLO_WASM = REPO / "examples/http-hello/build/http_hello.wasm"
GUESTS_DIR = TARGET / "guests/wasm32-wasip2/release"
DOCS = REPO / "docs"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    log("$ " + " ".join(str(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kw)


# --------------------------------------------------------------------------- setup

def ensure_tools() -> dict[str, str]:
    if shutil.which("wrk") is None:
        log("installing wrk from Debian's packages")
        sh(["apt-get", "update", "-qq"])
        sh(["apt-get", "install", "-y", "-qq", "wrk"])
    wasmtime = TOOLS / "bin" / "wasmtime"
    if not wasmtime.exists():
        log(f"installing wasmtime-cli {WASMTIME_VERSION} into {TOOLS} (a long build, once)")
        sh(["cargo", "install", "--locked", "wasmtime-cli", "--version", WASMTIME_VERSION,
            "--no-default-features", "--features", WASMTIME_FEATURES, "--root", str(TOOLS)])
    version = subprocess.run([str(wasmtime), "--version"], capture_output=True, text=True).stdout.strip()
    if WASMTIME_VERSION not in version:
        sys.exit(f"{wasmtime} is {version!r}, expected {WASMTIME_VERSION}; delete it and rerun")
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {"wasmtime": version, "wrk": (wrk_version.stdout + wrk_version.stderr).splitlines()[0]}


def build() -> None:
    sh(["cargo", "build", "--release", "-p", "trellis-cli"], cwd=REPO)
    sh(["cargo", "build", "--release", "-p", "trellis-lattice", "--example", "call_latency"], cwd=REPO)
    sh([str(REPO / "scripts/build-guests")], cwd=REPO)
    env = {k: v for k, v in os.environ.items() if k not in ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS")}
    sh(["cargo", "build", "--release", "--target", "wasm32-wasip2",
        "--manifest-path", str(REPO / "test-components/Cargo.toml"),
        "--target-dir", str(TARGET / "guests")], env=env)


def machine() -> dict[str, str]:
    info = {"cores": str(os.cpu_count()), "kernel": platform.release()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory"] = f"{int(line.split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    return info


# --------------------------------------------------------------------------- servers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_ok(url: str, timeout: float) -> float:
    """Seconds until `url` answers 200, polling every millisecond."""
    start = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"{url} did not answer within {timeout}s")
        time.sleep(0.001)


def hello_manifest(dir: Path, wasm: Path, instances: int = 1000, count: int = 1, route: str = "",
                   wasms: list[Path] | None = None) -> Path:
    """A manifest with `count` copies of one component (or one component per file in `wasms`),
    each behind its own HTTP link."""
    comps, links = [], []
    files = wasms or [wasm] * count
    for i, file in enumerate(files):
        comps.append(f"""    - name: c{i}
      type: component
      properties:
        image: file://{file}
      traits:
        - type: spreadscaler
          properties:
            instances: {instances}
""")
        # One provider linking to many components needs a link name per target (as in wadm).
        links.append(f"""        - type: link
          properties:
            name: to-c{i}
            target:
              name: c{i}
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
""")
    text = ("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: bench\nspec:\n  components:\n"
            + "".join(comps)
            + "    - name: httpserver\n      type: capability\n      properties:\n"
            + "        image: ghcr.io/wasmcloud/http-server:0.27.0\n      traits:\n" + "".join(links))
    path = dir / "app.yaml"
    path.write_text(text)
    return path


def server_env() -> dict[str, str]:
    """The environment both servers run in. RUST_BACKTRACE is forced off: with it on, every
    error value a server creates captures a backtrace, which costs wasmtime serve about a tenth of
    its throughput on this workload (see bench/notes.md); production runs without it."""
    return {**os.environ, "TRELLIS_LOG": "warn", "RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0"}


class Server:
    """A server process on a fixed port, optionally pinned to CPUs, stopped on exit."""

    def __init__(self, name: str, cmd: list[str], port: int, cpus: str | None):
        self.name, self.port = name, port
        self.cmd = (["taskset", "-c", cpus] if cpus else []) + cmd
        self.proc: subprocess.Popen | None = None
        self.started_in = 0.0

    def __enter__(self) -> "Server":
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=server_env())
        self.started_in = first_ok(f"http://127.0.0.1:{self.port}/", 120)
        return self

    def rss_kib(self) -> int:
        assert self.proc
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1])
        return 0

    def __exit__(self, *exc) -> None:
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def trellis_server(port: int, manifest: Path, cpus: str | None, cache: Path, extra: list[str] = ()) -> Server:
    return Server("trellis", [str(TRELLIS), "up", str(manifest), "--http", f"127.0.0.1:{port}",
                              "--admin", "off", "--cache-dir", str(cache), *extra], port, cpus)


def wasmtime_server(port: int, wasm: Path, cpus: str | None) -> Server:
    return Server("wasmtime serve", [str(TOOLS / "bin/wasmtime"), "serve", "-Scli", "--addr",
                                     f"127.0.0.1:{port}", str(wasm)], port, cpus)


# --------------------------------------------------------------------------- wrk

def wrk(port: int, path: str, connections: int, seconds: int, cpus: str | None) -> dict:
    cmd = (["taskset", "-c", cpus] if cpus else []) + [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    def latency(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"no {pct}% latency in wrk output:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": latency("50"), "p99_ms": latency("99"),
            "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else ""}


# --------------------------------------------------------------------------- benchmarks

HTTP_SYSTEMS = ["trellis", "trellis warm", "wasmtime serve", "trellis p3", "wasmtime serve p3"]


def bench_http(args, work: Path) -> tuple[str, dict]:
    """Hello-world throughput and latency, alternating: a WASI 0.2 component with a fresh
    instance per request (trellis, wasmtime serve), the same with warm instances (trellis), and
    a WASI 0.3 component (both, each with its default instance reuse)."""
    cache = work / "cache"
    manifest = hello_manifest(work, HELLO_WASM)
    warm_dir = work / "warm"
    warm_dir.mkdir(exist_ok=True)
    warm = hello_manifest(warm_dir, HELLO_WASM)
    warm.write_text(warm.read_text().replace("  name: bench\n", "  name: bench\n  annotations:\n    trellis.dev/warm: \"true\"\n", 1))
    p3_wasm = GUESTS_DIR / "hello_p3.wasm"
    p3_dir = work / "p3"
    p3_dir.mkdir(exist_ok=True)
    p3 = hello_manifest(p3_dir, p3_wasm)

    def server(system: str, port: int, cpus: str | None) -> Server:
        return {
            "trellis": lambda: trellis_server(port, manifest, cpus, cache),
            "trellis warm": lambda: trellis_server(port, warm, cpus, cache),
            "wasmtime serve": lambda: wasmtime_server(port, HELLO_WASM, cpus),
            "trellis p3": lambda: trellis_server(port, p3, cpus, cache),
            "wasmtime serve p3": lambda: wasmtime_server(port, p3_wasm, cpus),
        }[system]()

    modes = {"pinned (server on CPU 0, wrk on CPU 1)": ("0", "1"), "unpinned": (None, None)}
    results: dict[str, dict[str, list[dict]]] = {}
    for mode, (server_cpus, load_cpus) in modes.items():
        results[mode] = {system: [] for system in HTTP_SYSTEMS}
        for rnd in range(args.rounds):
            order = HTTP_SYSTEMS if rnd % 2 == 0 else list(reversed(HTTP_SYSTEMS))
            for system in order:
                port = free_port()
                with server(system, port, server_cpus):
                    wrk(port, "/", args.connections, args.warmup, load_cpus)
                    r = wrk(port, "/", args.connections, args.duration, load_cpus)
                log(f"http {mode} round {rnd + 1} {system}: {r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms")
                results[mode][system].append(r)

    lines = [f"`wrk -t1 -c{args.connections} -d{args.duration}s --latency` against `GET /` of the hello component "
             "(WASI 0.2, `examples/http-hello`) and of `test-components/hello-p3` (WASI 0.3), "
             f"after a {args.warmup}s warm-up, {args.rounds} rounds per system, alternating the order. "
             "`trellis` gives each request a fresh instance, `trellis warm` reuses instances "
             "(`trellis.dev/warm`), `wasmtime serve` gives a WASI 0.2 component a fresh instance per request "
             "and reuses WASI 0.3 instances (its defaults), `trellis p3` reuses WASI 0.3 instances "
             "(its defaults). Figures are medians over the rounds.", "",
             "| mode | system | req/s | p50 ms | p99 ms | non-2xx |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    summary = {}
    comparisons = [("trellis", "wasmtime serve", "p2 fresh vs wasmtime serve"),
                   ("trellis warm", "wasmtime serve", "p2 warm vs wasmtime serve (fresh)"),
                   ("trellis p3", "wasmtime serve p3", "p3 vs wasmtime serve p3")]
    for mode, systems in results.items():
        med = {s: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms")} for s, rs in systems.items()}
        for s, m in med.items():
            bad = sum(r["non_2xx"] for r in systems[s])
            lines.append(f"| {mode} | {s} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {bad} |")
        summary[mode] = {"medians": med}
        for ours, theirs, label in comparisons:
            t, w = med[ours], med[theirs]
            summary[mode][label] = {"throughput_ratio": t["rps"] / w["rps"], "p99_ratio": t["p99_ms"] / w["p99_ms"],
                                    "p50_ratio": t["p50_ms"] / w["p50_ms"]}
        # The headline ratios the plot and older reports use.
        summary[mode].update(summary[mode]["p2 fresh vs wasmtime serve"])
    lines += ["", "| mode | comparison | throughput ratio | p50 ratio | p99 ratio |",
              "| --- | --- | ---: | ---: | ---: |"]
    for mode, s in summary.items():
        for _, _, label in comparisons:
            c = s[label]
            lines.append(f"| {mode} | {label} | {c['throughput_ratio']:.3f} | {c['p50_ratio']:.3f} | {c['p99_ratio']:.3f} |")
    plot = DOCS / "performance-http.svg"
    plot.write_text(http_svg(summary))
    lines += ["", "![throughput and latency, trellis vs wasmtime serve](performance-http.svg)"]
    return "\n".join(lines), {"rounds": results, "summary": summary}


def bench_cold_start(args, work: Path) -> tuple[str, dict]:
    """Process start to first successful response, with an empty and a warm compile cache."""
    manifest = hello_manifest(work, HELLO_WASM)
    runs = {"trellis, empty cache": [], "trellis, warm cache": [], "wasmtime serve (default settings: its own compile cache, warm)": []}
    warm = work / "warm-cache"
    with trellis_server(free_port(), manifest, None, warm):
        pass  # populate the warm cache
    for _ in range(args.cold_runs):
        with trellis_server(free_port(), manifest, None, Path(tempfile.mkdtemp(dir=work))) as s:
            runs["trellis, empty cache"].append(s.started_in * 1000)
        with trellis_server(free_port(), manifest, None, warm) as s:
            runs["trellis, warm cache"].append(s.started_in * 1000)
        with wasmtime_server(free_port(), HELLO_WASM, None) as s:
            runs["wasmtime serve (default settings: its own compile cache, warm)"].append(s.started_in * 1000)
    lines = [f"Time from spawning the process to the first `200` on `GET /`, polled every millisecond; "
             f"median (min–max) of {args.cold_runs} starts.", "", "| start | ms |", "| --- | ---: |"]
    for name, ms in runs.items():
        lines.append(f"| {name} | {statistics.median(ms):.0f} ({min(ms):.0f}–{max(ms):.0f}) |")
    return "\n".join(lines), runs


def bench_density(args, work: Path) -> tuple[str, dict]:
    """Resident memory idle with N components, and per concurrent instance under load."""
    idle = {}
    # Measure warm starts: compiling in the measured process would count the compiler's memory.
    with trellis_server(free_port(), hello_manifest(work, HELLO_WASM), None, work / "cache"):
        pass
    for n in args.density:
        d = work / f"density-{n}"
        d.mkdir()
        manifest = hello_manifest(d, HELLO_WASM, instances=10, count=n)
        port = free_port()
        # --http with a fixed port would make N listeners collide: listen on port 0 and probe
        # the first component through its own address.
        proc = subprocess.Popen([str(TRELLIS), "up", str(manifest), "--http", "127.0.0.1:0",
                                 "--cache-dir", str(work / "cache")], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=server_env())
        try:
            listening = 0
            assert proc.stdout
            first = None
            while listening < n:
                line = proc.stdout.readline()
                if not line:
                    proc.wait(30)
                    raise RuntimeError(f"trellis exited during the density run with {proc.returncode}; "
                                       f"run it by hand: {TRELLIS} up {manifest} --http 127.0.0.1:0")
                if line.startswith("listening on http://"):
                    listening += 1
                    first = first or line.split()[2]
            first_ok(f"{first}/", 60)
            time.sleep(1)
            rss = int(next(l.split()[1] for l in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                           if l.startswith("VmRSS")))
            idle[n] = rss
            log(f"density {n} components: {rss / 1024:.1f} MiB")
        finally:
            proc.terminate()
            proc.wait(30)
        _ = port
    # Distinct components: each a different build (the hello component with a custom section
    # of its own), so nothing is shared between them but the host.
    distinct = {}
    for n in args.distinct:
        d = work / f"distinct-{n}"
        d.mkdir()
        base_bytes = HELLO_WASM.read_bytes()
        files = []
        for i in range(n):
            name, payload = b"trellis-bench", i.to_bytes(8, "little")
            section = bytes([0, 1 + len(name) + len(payload), len(name)]) + name + payload
            f = d / f"hello-{i}.wasm"
            f.write_bytes(base_bytes + section)
            files.append(f)
        manifest = hello_manifest(d, HELLO_WASM, instances=10, wasms=files)
        cache = d / "cache"
        row = {}
        for phase in ("cold", "warm"):
            start = time.perf_counter()
            proc = subprocess.Popen([str(TRELLIS), "up", str(manifest), "--http", "127.0.0.1:0", "--admin", "off",
                                     "--cache-dir", str(cache)], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, env=server_env(), cwd=d)
            try:
                listening, first = 0, None
                assert proc.stdout
                while listening < n:
                    line = proc.stdout.readline()
                    if not line:
                        proc.wait(30)
                        raise RuntimeError(f"trellis exited during the distinct run with {proc.returncode}")
                    if line.startswith("listening on http://"):
                        listening += 1
                        first = first or line.split()[2]
                first_ok(f"{first}/", 60)
                row[f"{phase}_start_s"] = time.perf_counter() - start
                time.sleep(1)
                row[f"{phase}_rss_kib"] = int(next(l.split()[1] for l in Path(f"/proc/{proc.pid}/status")
                                                   .read_text().splitlines() if l.startswith("VmRSS")))
            finally:
                proc.terminate()
                proc.wait(60)
        distinct[n] = row
        log(f"distinct {n}: {row}")
    # Under load: the behaviours component sleeping 200 ms keeps `connections` instances alive.
    behaviours = GUESTS_DIR / "behaviours.wasm"
    conc = args.load_instances
    manifest = hello_manifest(work, behaviours, instances=conc)
    port = free_port()
    with trellis_server(port, manifest, None, work / "cache") as s:
        time.sleep(0.5)
        base = s.rss_kib()
        peak = base
        load = subprocess.Popen(["wrk", "-t1", f"-c{conc}", "-d5s", f"http://127.0.0.1:{port}/sleep?ms=200"],
                                stdout=subprocess.DEVNULL)
        while load.poll() is None:
            peak = max(peak, s.rss_kib())
            time.sleep(0.05)
    per_instance = (peak - base) / conc
    lines = ["Resident set size (VmRSS) of one `trellis up` process after start-up, idle, with N copies of "
             "the hello component, each prepared and behind its own HTTP listener.", "",
             "| components | RSS MiB | per component KiB |", "| ---: | ---: | ---: |"]
    base1 = idle.get(1, 0)
    for n, rss in idle.items():
        per = (rss - base1) / (n - 1) if n > 1 else 0
        lines.append(f"| {n} | {rss / 1024:.1f} | {per:.0f} |" if n > 1 else f"| {n} | {rss / 1024:.1f} | – |")
    if distinct:
        lines += ["", "Distinct components, each a different build (the hello component with a custom section of "
                  "its own, so each is compiled and kept on its own): the time from `trellis up` to every "
                  "listener answering, and RSS idle after it, with an empty compile cache (cold) and then with the "
                  "cache that run filled (warm).", "",
                  "| components | cold start | cold RSS MiB | warm start | warm RSS MiB |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        for n, row in distinct.items():
            lines.append(f"| {n} | {row['cold_start_s']:.1f} s | {row['cold_rss_kib'] / 1024:.0f} | "
                         f"{row['warm_start_s']:.1f} s | {row['warm_rss_kib'] / 1024:.0f} |")
    lines += ["", f"Under load: {conc} concurrent requests to a component that sleeps 200 ms "
              f"(so {conc} instances are alive at once): RSS {base / 1024:.1f} MiB idle → "
              f"{peak / 1024:.1f} MiB peak, **{per_instance:.0f} KiB per concurrent instance**."]
    return "\n".join(lines), {"idle_kib": idle, "distinct": distinct, "load": {"instances": conc, "base_kib": base, "peak_kib": peak,
                                                           "per_instance_kib": per_instance}}


def bench_instantiate(args, work: Path) -> tuple[str, dict]:
    """criterion: prepared component → instance → handled request, in process."""
    out = subprocess.run(["cargo", "bench", "-p", "trellis-runtime", "--bench", "instantiate", "--",
                          "--warm-up-time", "2", "--measurement-time", str(args.duration)],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    found = re.findall(r"hello: instantiate \+ handle \+ collect body \(([^)]*)\)\s+"
                       r"time:\s+\[([\d.]+ \S+) ([\d.]+ \S+) ([\d.]+ \S+)\]", out)
    if len(found) != 4:
        raise RuntimeError(f"expected four criterion estimates in:\n{out}")
    lines = ["`cargo bench -p trellis-runtime --bench instantiate`: a fresh store and instance from the "
             "prepared `InstancePre`, `handle` called, the response body collected; no sockets. Side by side: "
             "memory slots reset in place for the next instance (`--memory-keep-resident`, the default) or "
             "handed back to the kernel (`0`, wasmtime's default), and the request run on a runtime with worker "
             "threads (criterion waits on its own thread: a handoff each way) or on one thread.", "",
             "| slots | runtime | per request (95% interval) |", "| --- | --- | --- |"]
    data = {}
    for name, low, est, high in found:
        slots, runtime = name.split(", ")
        lines.append(f"| {slots} | {runtime} | **{est}** ({low} – {high}) |")
        data[name] = {"low": low, "estimate": est, "high": high}
    return "\n".join(lines), data


def bench_lattice(args, work: Path) -> tuple[str, dict]:
    """`trellis get hosts` against a lattice of N `trellis host` processes on a local nats-server,
    side by side with a single request/reply (`trellis get inventory HOST`) made the same way."""
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    nats = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(work / "nats")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hosts: list[subprocess.Popen] = []
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("nats-server did not start")
                time.sleep(0.05)
        for i in range(args.lattice_hosts):
            hosts.append(subprocess.Popen(
                [str(TRELLIS), "host", "--nats", url, "--lattice", "bench", "--friendly-name", f"h{i:02}",
                 "--cache-dir", str(work / "cache")],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server_env(), text=True))
        ids = [h.stdout.readline().split()[1] for h in hosts]  # "host <ID> joined lattice bench"
        rss = sum(int(line.split()[1]) for h in hosts
                  for line in Path(f"/proc/{h.pid}/status").read_text().splitlines() if line.startswith("VmRSS"))
        cli = [str(TRELLIS), "--nats", url, "--lattice", "bench", "-o", "json"]

        def timed(extra: list[str]) -> tuple[float, str]:
            start = time.perf_counter()
            out = subprocess.run([*cli[:1], *extra, *cli[1:]], capture_output=True, text=True, env=server_env())
            elapsed = (time.perf_counter() - start) * 1000
            if out.returncode != 0:
                raise SystemExit(f"{' '.join(extra)} failed: {out.stderr}")
            return elapsed, out.stdout

        runs = {"get hosts": [], "get inventory (one host)": []}
        answered = []
        for _ in range(args.lattice_runs):
            ms, out = timed(["get", "hosts"])
            runs["get hosts"].append(ms)
            answered.append(len(json.loads(out)))
            runs["get inventory (one host)"].append(timed(["get", "inventory", ids[0]])[0])
    finally:
        for h in hosts:
            h.terminate()
        for h in hosts:
            try:
                h.wait(20)
            except subprocess.TimeoutExpired:
                h.kill()
        nats.terminate()
        nats.wait()
    hosts_ms, one_ms = statistics.median(runs["get hosts"]), statistics.median(runs["get inventory (one host)"])
    lines = [f"{args.lattice_hosts} `trellis host` processes on one local `nats-server -js`; each command is a fresh "
             f"`trellis` process (start, connect to NATS, ask, print JSON), timed end to end; median (min–max) of "
             f"{args.lattice_runs} runs. Hosts answering `get hosts`: {min(answered)}–{max(answered)} of "
             f"{args.lattice_hosts}. Resident memory of the {args.lattice_hosts} idle hosts: "
             f"{rss / 1024:.0f} MiB ({rss / args.lattice_hosts / 1024:.1f} MiB each).", "",
             "| command | ms |", "| --- | ---: |"]
    for name, ms in runs.items():
        lines.append(f"| {name} | {statistics.median(ms):.0f} ({min(ms):.0f}–{max(ms):.0f}) |")
    lines += ["", f"`get hosts` (scatter/gather over {args.lattice_hosts} hosts) / `get inventory` (one request/reply): "
              f"**{hosts_ms / one_ms:.2f}×**. Target: under 1 s with every host answering; the client stops "
              "collecting 150 ms after the last answer instead of waiting out a fixed timeout."]
    return "\n".join(lines), {"runs": runs, "answered": answered, "rss_kib": rss}


def start_nats(work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    nats = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(work / "nats")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return nats, f"nats://127.0.0.1:{port}"
        except OSError:
            if time.time() > deadline:
                nats.kill()
                raise SystemExit("nats-server did not start")
            time.sleep(0.05)


def bench_calls(args, work: Path) -> tuple[str, dict]:
    """A call to a component on another host (wRPC over NATS) against a raw async-nats
    request/reply of the same payload through the same nats-server, alternating in one run."""
    nats, url = start_nats(work)
    host = subprocess.Popen(
        [str(TRELLIS), "host", "--nats", url, "--lattice", "bench", "--friendly-name", "callee-host",
         "--cache-dir", str(work / "cache")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server_env(), text=True)
    results = []
    try:
        host.stdout.readline()  # "host <ID> joined lattice bench"
        callee = GUESTS_DIR / "callee.wasm"
        cli = [str(TRELLIS), "--nats", url, "--lattice", "bench"]
        sh([cli[0], "start", "component", f"file://{callee}", "callee", "--count", "64", *cli[1:]],
           env=server_env(), stdout=subprocess.DEVNULL)
        probe = TARGET / "release/examples/call_latency"
        deadline = time.time() + 30
        while subprocess.run([str(probe), url, "bench", "callee", "1", "1", "1"], capture_output=True).returncode != 0:
            if time.time() > deadline:
                raise SystemExit("the callee never answered")
            time.sleep(0.2)
        for size in args.call_sizes:
            # Big payloads are slow per call: fewer of them take as long as the small ones.
            iterations = max(100, args.call_iterations * 1024 // max(size, 1024))
            for concurrency in (1, 16):
                out = subprocess.run([str(probe), url, "bench", "callee", str(size), str(iterations),
                                      str(concurrency)], capture_output=True, text=True, check=True)
                results.append(json.loads(out.stdout))
    finally:
        host.terminate()
        host.wait(20)
        nats.terminate()
        nats.wait()
    lines = ["One `trellis host` runs the `callee` test guest (64 instances at most) on a local `nats-server`. "
             "The caller (`crates/lattice/examples/call_latency`, a release build) calls `trellis:test/calls.echo(list<u8>)` "
             "through `WrpcClient`, the code a host's components call other hosts with: publish, a fresh instance "
             "on the callee host, results back (the Trellis-to-Trellis fast path: one message each way). The baseline is an async-nats request to an echo "
             "responder with the same payload through the same server. Both alternate, three rounds each of "
             f"{args.call_iterations} calls per task (fewer for payloads over 1 KiB) after a warm-up; the table "
             "shows the round with the median ratio.", "",
             "| payload | tasks | raw p50 µs | call p50 µs | **p50 ratio** | raw p99 µs | call p99 µs | raw calls/s | call calls/s |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        rounds = sorted(r["rounds"], key=lambda x: x["call"]["p50_us"] / x["raw"]["p50_us"])
        mid = rounds[len(rounds) // 2]
        raw, call = mid["raw"], mid["call"]
        lines.append(f"| {r['payload_bytes']} B | {r['concurrency']} | {raw['p50_us']:.0f} | {call['p50_us']:.0f} | "
                     f"**{call['p50_us'] / raw['p50_us']:.2f}×** | {raw['p99_us']:.0f} | {call['p99_us']:.0f} | "
                     f"{raw['calls_per_s']:.0f} | {call['calls_per_s']:.0f} |")
    lines += ["", "Target: a call between hosts costs at most 1.25× a raw NATS request/reply (p50, one task). "
              "A call between components on one host makes no NATS hop at all: the values go straight into a "
              "fresh instance of the target (tested in `crates/cli/tests/calls.rs`)."]
    return "\n".join(lines), {"results": results}


def componentize_py_command(out: str) -> str:
    """The componentize-py command that builds app.py into `out`, for the wasi:http version
    this workspace's wasmtime serves (its WIT, from cargo metadata)."""
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1"], cwd=REPO,
                                     capture_output=True, text=True, check=True).stdout)
    manifest = next(p["manifest_path"] for p in meta["packages"] if p["name"] == "wasmtime-wasi-http")
    wit = Path(manifest).parent / "wit"
    version = next(l.strip().removeprefix("package wasi:http@").rstrip(";")
                   for l in (wit / "deps/http.wit").read_text().splitlines()
                   if l.strip().startswith("package wasi:http@"))
    tool = Path(os.environ.get("TRELLIS_TOOLS", "/var/tmp/trellis-tools")) / "venv/bin/componentize-py"
    if not tool.exists():
        sh([str(REPO / "scripts/services")])
    return f"PYTHONDONTWRITEBYTECODE=1 {tool} -d {wit} -w wasi:http/proxy@{version} componentize app -o {out}"


def py_component(work: Path) -> Path:
    """The Python HTTP test component, built by componentize-py (about 15 MB), in a project
    folder with the manifest `trellis dev` runs."""
    src = work / "py"
    src.mkdir()
    shutil.copy(REPO / "test-components/py-http/app.py", src / "app.py")
    command = componentize_py_command("build/py_http.wasm")
    sh(["sh", "-c", command], cwd=src)
    (src / "app.yaml").write_text(py_manifest(command))
    return src / "build/py_http.wasm"


def dev_edit_to_served(work: Path, project: Path, source: Path, old: str, new: str, compiler: str,
                       runs: int) -> list[dict]:
    """Runs `trellis dev` in `project` and times, for each edit of `source`, the seconds from the
    write to the first response with the new body, and what dev reported for the build and swap."""
    env = {**os.environ, "XDG_STATE_HOME": str(work / "state"), "NO_COLOR": "1",
           "TRELLIS_DEV_COMPILER": compiler}
    port = free_port()
    proc = subprocess.Popen([str(TRELLIS), "dev", "--http", f"127.0.0.1:{port}", "--admin", "127.0.0.1:0"],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def wait_for(needle: str, timeout: float) -> str:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if needle in line:
                return line
        raise RuntimeError(f"`trellis dev` never printed {needle!r}:\n" + "\n".join(lines[-40:]))

    def served(body: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                return body in r.read().decode()
        except OSError:
            return False

    results = []
    original = source.read_text()
    try:
        wait_for("watching for changes", 900)
        for i in range(runs):
            text = original.replace(old, f"{new} {i}")
            start = time.perf_counter()
            source.write_text(text)
            while not served(f"{new} {i}"):
                if time.perf_counter() - start > 300:
                    raise RuntimeError("the edit was not served within 300 s:\n" + "\n".join(lines[-40:]))
                time.sleep(0.005)
            total = time.perf_counter() - start
            built = wait_for(" | built ", 60)  # dev's own line, not a tool's "built successfully"
            swapped = wait_for("swapped in", 60)
            b = re.search(r"in ([\d.]+)(m?s)", built)
            w = re.search(r"swapped in ([\d.]+)s", swapped)
            results.append({"total_s": total,
                            "build_s": float(b.group(1)) / (1000 if b.group(2) == "ms" else 1) if b else None,
                            "swap_s": float(w.group(1)) if w else None})
            time.sleep(1)  # let the old copy go before the next edit
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        source.write_text(original)
    return results


def bench_dev(args, work: Path) -> tuple[str, dict]:
    """trellis dev: compile time by compiler (criterion) and edit-to-served times."""
    py = py_component(work)
    size_mb = py.stat().st_size / 1e6
    out = subprocess.run(["cargo", "bench", "-p", "trellis-runtime", "--bench", "compile", "--",
                          "--warm-up-time", "1", "--measurement-time", str(max(args.duration, 10))],
                         cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "TRELLIS_BENCH_COMPONENT": str(py)}).stdout
    compile_times = {}
    for name in ("optimizing (cranelift)", "baseline (winch)"):
        m = re.search(re.escape(name) + r"\s+time:\s+\[([\d.]+ \S+) ([\d.]+ \S+) ([\d.]+ \S+)\]", out)
        if not m:
            raise RuntimeError(f"no criterion estimate for {name} in:\n{out}")
        compile_times[name] = m.group(2)

    def seconds(t: str) -> float:
        v, unit = t.split()
        return float(v) * {"s": 1, "ms": 1e-3, "µs": 1e-6}[unit]

    ratio = seconds(compile_times["optimizing (cranelift)"]) / seconds(compile_times["baseline (winch)"])

    runs = 2 if args.quick else 5
    rust = work / "hello"
    sh([str(TRELLIS), "new", "hello", "--path", str(rust)])
    # The project's dependencies built once, before the timed edits.
    sh(["cargo", "build", "--release", "--target", "wasm32-wasip2"], cwd=rust)
    edits = {}
    for compiler in ("baseline", "optimizing"):
        edits[f"rust {compiler}"] = dev_edit_to_served(
            work / f"rust-{compiler}", rust, rust / "src/lib.rs", "Hello from Trellis!", "Hello from an edit", compiler, runs)
    pyproj = py.parent.parent
    for compiler in ("baseline", "optimizing"):
        edits[f"python {compiler}"] = dev_edit_to_served(
            work / f"py-{compiler}", pyproj, pyproj / "app.py", "Hello from Python", "Hello again from Python", compiler, runs)

    def med(rows: list[dict], key: str) -> float:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    lines = [f"`cargo bench -p trellis-runtime --bench compile` on the Python test component "
             f"(componentize-py, {size_mb:.1f} MB), no cache, side by side:", "",
             "| compiler | compile time |", "| --- | --- |",
             *[f"| {k} | {v} |" for k, v in compile_times.items()], "",
             f"Winch compiles it **{ratio:.1f}×** faster than Cranelift.", "",
             f"`trellis dev` edit to served (median of {runs} edits each): the source file written, "
             "until `GET /` answers with the new body; `build` and `swap` are what dev printed "
             "(the build; the compile and start of the new version after it).", "",
             "| project | compiler | edit → served | build | swap |", "| --- | --- | --- | --- | --- |"]
    for key, rows in edits.items():
        project, compiler = key.split()
        lines.append(f"| {project} | {compiler} | {med(rows, 'total_s'):.2f} s | {med(rows, 'build_s'):.2f} s | "
                     f"{med(rows, 'swap_s'):.2f} s |")
    return "\n".join(lines), {"component_mb": size_mb, "compile": compile_times, "ratio": ratio, "edits": edits}


def py_manifest(build_cmd: str) -> str:
    """The Python component's manifest, with its dev build command."""
    return f"""apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: py
  annotations:
    trellis.dev/build.web: '{build_cmd}'
    trellis.dev/watch.web: app.py
spec:
  components:
    - name: web
      type: component
      properties:
        image: file://./build/py_http.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: 4
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
      traits:
        - type: link
          properties:
            target:
              name: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: default-http
                  properties:
                    address: 127.0.0.1:8000
"""


def bench_noisy(args, work: Path) -> tuple[str, dict]:
    """A plain request to one component while guests of another spin until their deadline."""
    import threading
    spin_port, hello_port = free_port(), free_port()
    for name in ("behaviours", "http_hello"):
        shutil.copy(GUESTS_DIR / f"{name}.wasm", work / f"{name}.wasm")

    def component(name: str, wasm: str) -> str:
        return (f"    - name: {name}\n      type: component\n      properties:\n        image: file://./{wasm}.wasm\n"
                "      traits:\n        - type: spreadscaler\n          properties:\n            instances: 16\n")

    def link(name: str, port: int) -> str:
        return (f"        - type: link\n          properties:\n            name: {name}\n            target:\n"
                f"              name: {name}\n            namespace: wasi\n            package: http\n"
                "            interfaces: [incoming-handler]\n            source:\n              config:\n"
                f"                - name: {name}-http\n                  properties:\n"
                f"                    address: 127.0.0.1:{port}\n")

    manifest = work / "app.yaml"
    manifest.write_text("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: noisy\nspec:\n"
                        "  components:\n" + component("spin", "behaviours") + component("hello", "http_hello")
                        + "    - name: httpserver\n      type: capability\n      properties:\n"
                        "        image: ghcr.io/wasmcloud/http-server:0.27.0\n      traits:\n"
                        + link("spin", spin_port) + link("hello", hello_port))
    spinners, deadline = 4, 2.0

    def get(port: int, path: str) -> float:
        start = time.perf_counter()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).read()
        except OSError:
            pass  # the spinners end in an error: the deadline
        return time.perf_counter() - start

    rounds = 2 if args.quick else 5
    idle, busy, stopped = [], [], []
    proc = subprocess.Popen([str(TRELLIS), "up", str(manifest), "--admin", "off", "--max-execution-time",
                             f"{deadline:g}s", "--cache-dir", str(work / "cache")], cwd=work, env=server_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first_ok(f"http://127.0.0.1:{hello_port}/", 120)
        for _ in range(rounds):
            idle += [get(hello_port, "/") for _ in range(20)]
            threads = [threading.Thread(target=lambda: stopped.append(get(spin_port, "/loop")))
                       for _ in range(spinners)]
            for t in threads:
                t.start()
            time.sleep(0.3)  # every spinner running
            for _ in range(10):
                busy.append(get(hello_port, "/"))
                time.sleep(0.05)
            for t in threads:
                t.join()
    finally:
        proc.terminate()
        proc.wait(30)
    ms = lambda v: f"{v * 1000:.1f} ms"
    lines = [f"`trellis up --max-execution-time {deadline:g}s` with two components on {os.cpu_count()} cores: "
             f"{spinners} requests to a guest that spins in `loop {{}}` (stopped by the deadline), and meanwhile "
             f"plain requests to the hello component ({rounds} rounds, {len(busy)} requests; the same requests "
             "with nothing spinning, in the same run, as the baseline).", "",
             "| | p50 | max |", "| --- | --- | --- |",
             f"| hello, idle | {ms(statistics.median(idle))} | {ms(max(idle))} |",
             f"| hello, while {spinners} guests spin | {ms(statistics.median(busy))} | {ms(max(busy))} |", "",
             f"The spinning requests ended {min(stopped):.3f}–{max(stopped):.3f} s after they were sent "
             f"(deadline {deadline:g} s)."]
    return "\n".join(lines), {"idle_ms": [v * 1000 for v in idle], "busy_ms": [v * 1000 for v in busy],
                              "spinners_stopped_s": stopped}


BENCHMARKS = {
    "http": ("HTTP throughput and latency", bench_http),
    "instantiate": ("Instantiation cost (in process)", bench_instantiate),
    "cold-start": ("Cold start", bench_cold_start),
    "density": ("Density", bench_density),
    "lattice": ("Lattice control: get hosts", bench_lattice),
    "calls": ("Calls between hosts", bench_calls),
    "dev": ("trellis dev", bench_dev),
    "noisy": ("Noisy neighbours", bench_noisy),
}


# --------------------------------------------------------------------------- plot

def http_svg(summary: dict) -> str:
    """Grouped bars: req/s and p99 per mode, trellis vs wasmtime serve. Plain SVG, no dependencies."""
    colors = {"trellis": "#2b7a78", "trellis warm": "#3aafa9", "wasmtime serve": "#c0843d",
              "trellis p3": "#17252a", "wasmtime serve p3": "#e5a663"}
    panels = [("requests per second", "rps"), ("p50 latency (ms)", "p50_ms"), ("p99 latency (ms)", "p99_ms")]
    w, h, pad = 300, 260, 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * len(panels)}" height="{h + 40}" '
             'font-family="sans-serif" font-size="11">']
    for i, (title, key) in enumerate(panels):
        x0 = i * w
        parts.append(f'<text x="{x0 + w / 2}" y="16" text-anchor="middle" font-size="13">{title}</text>')
        values = [(mode, s, summary[mode]["medians"][s][key]) for mode in summary for s in colors]
        vmax = max(v for _, _, v in values) or 1
        bar = (w - 2 * pad) / (len(values) + len(summary))
        x = x0 + pad
        for j, mode in enumerate(summary):
            for s in colors:
                v = summary[mode]["medians"][s][key]
                bh = (h - 60) * v / vmax
                parts.append(f'<rect x="{x:.1f}" y="{h - 20 - bh:.1f}" width="{bar * 0.9:.1f}" height="{bh:.1f}" fill="{colors[s]}"/>')
                parts.append(f'<text x="{x + bar * 0.45:.1f}" y="{h - 24 - bh:.1f}" text-anchor="middle">{v:.0f}</text>'
                             if key == "rps" else
                             f'<text x="{x + bar * 0.45:.1f}" y="{h - 24 - bh:.1f}" text-anchor="middle">{v:.2f}</text>')
                x += bar
            parts.append(f'<text x="{x - bar:.1f}" y="{h - 6}" text-anchor="middle">{mode.split(" ")[0]}</text>')
            x += bar
    for k, (s, c) in enumerate(colors.items()):
        parts.append(f'<rect x="{10 + k * 140}" y="{h + 14}" width="12" height="12" fill="{c}"/>'
                     f'<text x="{26 + k * 140}" y="{h + 24}">{s}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- report

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("benchmarks", nargs="*", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="short runs, for trying the suite out")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--cold-runs", type=int, default=5)
    p.add_argument("--density", type=int, nargs="*", default=[1, 100, 1000])
    p.add_argument("--distinct", type=int, nargs="*", default=[100, 1000],
                   help="numbers of distinct components (each a different build) for the density benchmark")
    p.add_argument("--load-instances", type=int, default=64)
    p.add_argument("--lattice-hosts", type=int, default=20)
    p.add_argument("--lattice-runs", type=int, default=10)
    p.add_argument("--call-sizes", type=int, nargs="*", default=[16, 1024, 65536])
    p.add_argument("--call-iterations", type=int, default=2000)
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite docs/performance.md from docs/performance.json and bench/notes.md, measuring nothing")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup, args.cold_runs = 1, 3, 1, 2
        args.density = [1, 10]
        args.distinct = [10]
        args.call_iterations = 300
    names = args.benchmarks or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    if args.report_only:
        raw = json.loads((DOCS / "performance.json").read_text())
    else:
        raw = measure(args, names)
    write_report(raw)


def measure(args, names: list[str]) -> dict:
    previous = DOCS / "performance.json"
    if set(names) <= {"lattice", "calls", "dev", "noisy"}:
        # These benchmarks need neither wasmtime-cli nor wrk.
        old = json.loads(previous.read_text()).get("tools") if previous.exists() else None
        tools = old or {"wasmtime": "not used", "wrk": "not used"}
    else:
        tools = ensure_tools()
    if not args.no_build:
        build()
    DOCS.mkdir(exist_ok=True)
    raw = {"machine": machine(), "tools": tools, "command": " ".join(["bench/run", *sys.argv[1:]]),
           "sections": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            title, fn = BENCHMARKS[name]
            log(f"== {title}")
            work = Path(tmp) / name
            work.mkdir()
            text, data = fn(args, work)
            raw["sections"].append({"name": name, "title": title, "markdown": text, "data": data})
    # Sections not measured this time keep their last results, so `bench/run lattice` does not
    # throw away the HTTP numbers.
    if previous.exists() and set(names) != set(BENCHMARKS):
        measured = {sec["name"] for sec in raw["sections"]}
        kept = [sec for sec in json.loads(previous.read_text()).get("sections", []) if sec["name"] not in measured]
        order = list(BENCHMARKS)
        raw["sections"] = sorted(kept + raw["sections"], key=lambda sec: order.index(sec["name"]) if sec["name"] in order else len(order))
    previous.write_text(json.dumps(raw, indent=2, default=str))
    return raw


def write_report(raw: dict) -> None:
    m, tools = raw["machine"], raw["tools"]
    notes = (REPO / "bench/notes.md").read_text() if (REPO / "bench/notes.md").exists() else ""
    report = [
        "# Performance", "",
        "Generated by `bench/run`; do not edit by hand. The analysis lives in `bench/notes.md` and is "
        "copied in at the end (`bench/run --report-only` refreshes it without measuring).", "",
        f"Machine: {m.get('cpu', '?')}, {m['cores']} cores, {m.get('memory', '?')}, Linux {m['kernel']}. "
        f"Baseline: {tools['wasmtime']} (built by the script with the features `{WASMTIME_FEATURES}`), "
        f"load from {tools['wrk']}. Trellis: release build of this commit.", "",
        f"Command: `{raw['command']}`", "",
        *[f"## {sec['title']}\n\n{sec['markdown']}\n" for sec in raw["sections"]],
        notes]
    (DOCS / "performance.md").write_text("\n".join(report))
    log(f"wrote {DOCS / 'performance.md'}")


if __name__ == "__main__":
    main()
