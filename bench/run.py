#!/usr/bin/python3
"""cloudfs benchmarks: cloudfs, qcow2 and raw on the same file system in
the same run, through qemu-storage-daemon NBD exports and fio's nbd engine
(cache.direct=on, aio=io_uring), plus qemu-img measurements.

Every figure is the median of several repetitions, with its ratio to qcow2
and to raw.  Results go to a JSON file; --doc rewrites
docs/performance.rst and the IOPS-against-queue-depth plot.

    bench/run.py                 # the full suite (minutes to an hour)
    bench/run.py --smoke         # tiny sizes, one repetition (CI)
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(TOP, "build", "bin")
FORMATS = ["cloudfs", "qcow2", "raw"]
MiB = 1 << 20
GiB = 1 << 30


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          **kw)


def create(fmt, path, size):
    if os.path.exists(path):
        os.unlink(path)
    run(os.path.join(BIN, "qemu-img"), "create", "-q", "-f", fmt, path,
        str(size))


# The NBD server allocates each request's buffer and frees it when done.
# With glibc's default (dynamic) thresholds, buffers of 1 MiB requests are
# given back to the kernel and faulted in again at every request; where a
# page fault is dear (a guest whose hypervisor shadows its page tables),
# that cost swamps the formats', and the first touch of the data from user
# space (cloudfs checksums it, raw and qcow2 only hand it to the kernel)
# faults once more.  A guest's buffers are its RAM, mapped once: fixed
# thresholds keep freed buffers in the heap, as long-lived as that.
# bench/analysis.rst has the measurement; --malloc-default turns it off.
KEEP_BUFFERS = {"MALLOC_MMAP_THRESHOLD_": str(32 * MiB),
                "MALLOC_TRIM_THRESHOLD_": str(256 * MiB)}


class Export:
    """A qemu-storage-daemon serving one image over NBD on a socket."""

    env = None      # extra environment of the daemon

    def __init__(self, fmt, path, work):
        self.sock = os.path.join(work, "nbd.sock")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        file_node = ("driver=file,node-name=f,filename=%s,"
                     "cache.direct=on,aio=io_uring" % path)
        self.proc = subprocess.Popen([
            os.path.join(BIN, "qemu-storage-daemon"),
            "--blockdev", file_node,
            "--blockdev", "driver=%s,node-name=d,file=f,cache.direct=on"
            % fmt,
            "--nbd-server", "addr.type=unix,addr.path=%s" % self.sock,
            "--export", "type=nbd,id=e,node-name=d,writable=on,name=d",
        ], stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, **(self.env or {})))
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            if self.proc.poll() is not None:
                raise RuntimeError("qemu-storage-daemon: " +
                                   self.proc.stderr.read())
            time.sleep(0.05)
        raise RuntimeError("qemu-storage-daemon did not start")

    @property
    def uri(self):
        return "nbd+unix:///d?socket=%s" % self.sock

    def bytes_written(self):
        """Bytes the daemon has sent to storage so far (its io_uring
        workers included): the zeros and metadata a format writes count,
        space it only fallocates does not."""
        with open("/proc/%d/io" % self.proc.pid) as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
        raise RuntimeError("no write_bytes in /proc/%d/io" % self.proc.pid)

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def fio(uri, rw, bs, depth, size, seconds, mix=None):
    """IOPS, bytes/s and bytes moved of one fio job on an NBD export."""
    cmd = ["fio", "--name=job", "--ioengine=nbd", "--uri=%s" % uri,
           "--rw=%s" % rw, "--bs=%d" % bs, "--iodepth=%d" % depth,
           "--size=%d" % size, "--output-format=json",
           "--randrepeat=0", "--norandommap"]
    if seconds:
        cmd += ["--time_based", "--runtime=%d" % seconds]
    if mix is not None:
        cmd += ["--rwmixread=%d" % mix]
    out = run(*cmd).stdout
    # the nbd engine says "connected" on stdout before the JSON
    job = json.loads(out[out.index("{"):])["jobs"][0]
    iops = job["read"]["iops"] + job["write"]["iops"]
    bw = job["read"]["bw_bytes"] + job["write"]["bw_bytes"]
    moved = job["read"]["io_bytes"] + job["write"]["io_bytes"]
    return iops, bw, moved, job["write"]["io_bytes"]


STORAGE_TEST = "write 1M QD4, fio on a file without QEMU"
# the kinds of space the storage probe writes to (Suite.storage); the
# first is the others' baseline
STORAGE_SMALL = "over a file of the images' size, again and again"
STORAGE_KINDS = ["over written blocks", "into a hole",
                 "into fallocated space", STORAGE_SMALL]


def fio_file(path, size, total):
    """IOPS and bytes/s of 1 MiB direct writes at QD4 on a file of size
    bytes, writing total bytes (over and over the file if it is
    smaller)."""
    job = json.loads(run(
        "fio", "--name=job", "--filename=%s" % path, "--ioengine=io_uring",
        "--direct=1", "--rw=write", "--bs=%d" % MiB, "--iodepth=4",
        "--size=%d" % size, "--io_size=%d" % total,
        "--output-format=json").stdout)["jobs"][0]
    return job["write"]["iops"], job["write"]["bw_bytes"]


def allocated(path):
    return os.stat(path).st_blocks * 512


class Suite:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        os.makedirs(self.work, exist_ok=True)
        self.size = args.size
        self.results = {}
        self.saver = None       # called after every result recorded

    def image(self, fmt):
        return os.path.join(self.work, "bench.%s" % fmt)

    def record(self, name, fmt, values):
        self.results.setdefault(name, {})[fmt] = values
        if self.saver:
            self.saver()

    def each(self, name, prepare, measure, size=None):
        """Median over repetitions of measure() for every format, on
        images of size (the suite's size unless given).

        The formats take turns within each round (cloudfs, qcow2, raw,
        then again), so that a slow spell of a shared machine falls on all
        three alike, and round i of one format can be compared with round
        i of another."""
        samples = {fmt: [] for fmt in FORMATS}
        for _ in range(self.args.reps):
            for fmt in FORMATS:
                path = self.image(fmt)
                create(fmt, path, size or self.size)
                state = prepare(fmt, path)
                samples[fmt].append(measure(fmt, path, state))
                os.unlink(path)
        for fmt in FORMATS:
            self.record(name, fmt, samples[fmt])
            print("  %-8s %s" % (fmt, samples[fmt]), flush=True)

    def exported(self, fmt, path, fn):
        """fn(export) with the image exported meanwhile."""
        exp = Export(fmt, path, self.work)
        try:
            return fn(exp)
        finally:
            exp.close()

    # --- fio through NBD ------------------------------------------------
    def fill(self, fmt, path):
        self.exported(fmt, path, lambda exp: fio(
            exp.uri, "write", MiB, 4, self.size, 0))

    def fragment(self, fmt, path):
        self.fill(fmt, path)
        self.exported(fmt, path, lambda exp: fio(
            exp.uri, "randwrite", 4096, 32, self.size, self.args.seconds))

    def fio_tests(self):
        secs = self.args.seconds
        nothing = lambda fmt, path: None
        # name, preparation, fio rw, block size, queue depth, read share;
        # each runs for --seconds, over and over the image
        tests = [
            ("randwrite 4k QD1, fresh", nothing, "randwrite", 4096, 1, None),
            ("randwrite 4k QD32, fresh", nothing, "randwrite", 4096, 32, None),
            ("randwrite 4k QD1, written", self.fill, "randwrite", 4096, 1,
             None),
            ("randwrite 4k QD32, written", self.fill, "randwrite", 4096, 32,
             None),
            ("randread 4k QD32, sequential", self.fill, "randread", 4096, 32,
             None),
            ("randread 4k QD32, fragmented", self.fragment, "randread", 4096,
             32, None),
            ("write 1M QD4", nothing, "write", MiB, 4, None),
            # once over a fresh image, no longer: every format allocates
            # all the way, where the timed run above overwrites after its
            # first pass (bench/analysis.rst)
            ("write 1M QD4, one pass", nothing, "write", MiB, 4, None),
            # images too big to wrap around within the run: every format
            # writes new space all the time, as a log always does
            ("write 1M QD4, new space", nothing, "write", MiB, 4, None),
            ("read 1M QD4", self.fill, "read", MiB, 4, None),
            ("randrw 70/30 4k QD16", self.fill, "randrw", 4096, 16, 70),
        ]
        for depth in (4, 16):
            tests.append(("randwrite 4k QD%d, fresh" % depth, nothing,
                          "randwrite", 4096, depth, None))
        for name, prepare, rw, bs, depth, mix in tests:
            if self.args.only and not any(o in name for o in self.args.only):
                continue
            print(name, flush=True)

            once = name.endswith("one pass")
            size = self.args.new_space_size if name.endswith("new space") \
                else self.size

            def measure(fmt, path, state, rw=rw, bs=bs, depth=depth,
                        mix=mix, once=once, size=size):
                def run_fio(exp):
                    before = exp.bytes_written()
                    result = fio(exp.uri, rw, bs, depth, size,
                                 0 if once else secs, mix)
                    return result + (exp.bytes_written() - before,)

                before = allocated(path)
                iops, bw, moved, written, stored = self.exported(
                    fmt, path, run_fio)
                grew = allocated(path) - before
                return {"iops": iops, "MB/s": bw / 1e6,
                        "amplification": grew / written if written else None,
                        "device amplification":
                            stored / written if written else None}

            self.each(name, prepare, measure, size)

    # --- the storage alone ----------------------------------------------
    def storage(self):
        """1 MiB writes at QD4 by fio on a file of the same file system,
        without QEMU, the same number of bytes for each kind of space:
        what the storage charges for writing new space (a hole, or space
        fallocated and not yet written) against overwriting written
        blocks, and what overwriting a small file again and again gains
        besides (raw's timed runs do that: 1 GiB, some ten times over
        in 5 s).
        A log always writes new space."""
        total = self.args.probe_bytes
        free = shutil.disk_usage(self.work).free
        need = total + min(2 * GiB, total)     # and a margin
        if free < need:
            print("storage alone: skipped, %d MiB free and the probe needs "
                  "%d" % (free // MiB, need // MiB), flush=True)
            return
        print("storage alone", flush=True)
        path = os.path.join(self.work, "storage.probe")
        samples = {kind: [] for kind in STORAGE_KINDS}
        try:
            for _ in range(self.args.reps):
                for kind in STORAGE_KINDS:
                    size = min(self.size, total) \
                        if kind == STORAGE_SMALL else total
                    with open(path, "wb") as f:
                        if kind == "into fallocated space":
                            os.posix_fallocate(f.fileno(), 0, size)
                        else:
                            f.truncate(size)
                    if kind in ("over written blocks", STORAGE_SMALL):
                        fio_file(path, size, size)
                    iops, bw = fio_file(path, size, total)
                    samples[kind].append({"iops": iops, "MB/s": bw / 1e6})
                    os.unlink(path)
        finally:
            if os.path.exists(path):
                os.unlink(path)
        for kind in STORAGE_KINDS:
            self.record(STORAGE_TEST, kind, samples[kind])
            print("  %-28s %s" % (kind, [round(s["iops"]) for s in
                                         samples[kind]]), flush=True)

    # --- qemu-img -------------------------------------------------------
    def convert(self):
        print("qemu-img convert", flush=True)
        raw = os.path.join(self.work, "source.raw")
        size = self.args.convert_size
        with open(raw, "wb") as f:
            f.truncate(size)
            chunk = os.urandom(MiB)
            # data in every other 4 MiB: half holes
            for off in range(0, size, 8 * MiB):
                f.seek(off)
                for _ in range(min(4, (size - off) // MiB)):
                    f.write(chunk)
        img = os.path.join(BIN, "qemu-img")
        into = {fmt: [] for fmt in FORMATS}
        back = {fmt: [] for fmt in FORMATS}
        for _ in range(self.args.reps):
            for fmt in FORMATS:
                out = self.image(fmt)
                if os.path.exists(out):
                    os.unlink(out)
                t = time.monotonic()
                run(img, "convert", "-t", "none", "-T", "none", "-f", "raw",
                    "-O", fmt, raw, out)
                into[fmt].append(time.monotonic() - t)
                again = os.path.join(self.work, "back.raw")
                t = time.monotonic()
                run(img, "convert", "-t", "none", "-T", "none", "-f", fmt,
                    "-O", "raw", out, again)
                back[fmt].append(time.monotonic() - t)
                os.unlink(again)
                os.unlink(out)
        for fmt in FORMATS:
            self.record("convert raw -> format (s)", fmt, into[fmt])
            self.record("convert format -> raw (s)", fmt, back[fmt])
            print("  %-8s into %s back %s" % (fmt, into[fmt], back[fmt]),
                  flush=True)
        os.unlink(raw)

    def snapshots(self):
        print("qemu-img snapshot -c", flush=True)
        img = os.path.join(BIN, "qemu-img")
        for written in self.args.snapshot_sizes:
            name = "snapshot create, %d MiB written (ms)" % (written // MiB)
            for fmt in ("cloudfs", "qcow2"):
                path = self.image(fmt)
                create(fmt, path, max(written, self.size))
                self.exported(fmt, path, lambda exp: fio(
                    exp.uri, "write", MiB, 4, written, 0))
                samples, listed = [], []
                for i in range(self.args.reps):
                    t = time.monotonic()
                    run(img, "snapshot", "-c", "s%d" % i, path)
                    samples.append((time.monotonic() - t) * 1000)
                    # the same process opening the same image, taking no
                    # snapshot: what the machine charges for the rest
                    t = time.monotonic()
                    run(img, "snapshot", "-l", path)
                    listed.append((time.monotonic() - t) * 1000)
                self.record(name, fmt, samples)
                self.record(name.replace("create", "list"), fmt, listed)
                print("  %-8s %s, list %s" % (fmt, samples, listed),
                      flush=True)

    def extents(self):
        print("open with many extents", flush=True)
        img = os.path.join(BIN, "qemu-img")
        count = self.args.extents
        for fmt in ("cloudfs", "qcow2"):
            path = self.image(fmt)
            # the same program on an empty image: what is not the index
            empty = path + ".empty"
            create(fmt, empty, count * 8192)
            base = []
            for _ in range(self.args.reps):
                out = run("/usr/bin/time", "-f", "%M",
                          os.path.join(BIN, "qemu-io"), "-f", fmt, "-r",
                          "-c", "read 0 4k", empty)
                base.append(int(out.stderr.strip().splitlines()[-1]))
            os.unlink(empty)
            create(fmt, path, count * 8192)
            # every other 4 KiB block: one extent each
            run(img, "bench", "-q", "-w", "-f", fmt, "-t", "none",
                "-c", str(count), "-d", "32", "-s", "4096", "-S", "8192",
                path)
            for what, cmd in (("qemu-img info", [img, "info", "-f", fmt,
                                                 path]),
                              ("qemu-io read", [os.path.join(BIN, "qemu-io"),
                                                "-f", fmt, "-r", "-c",
                                                "read 0 4k", path])):
                secs, rss = [], []
                for _ in range(self.args.reps):
                    t = time.monotonic()
                    out = run("/usr/bin/time", "-f", "%M", *cmd)
                    secs.append((time.monotonic() - t) * 1000)
                    rss.append(int(out.stderr.strip().splitlines()[-1]) / 1024)
                self.record("%s, %d extents (ms)" % (what, count), fmt, secs)
                self.record("%s, %d extents, peak RSS (MiB)" % (what, count),
                            fmt, rss)
                if what == "qemu-io read":
                    # KiB above the empty image's median, per extent
                    b = sorted(base)[len(base) // 2]
                    self.record("qemu-io read, memory above an empty image "
                                "per extent (bytes)", fmt,
                                [max(0.0, (r * 1024 - b) * 1024 / count)
                                 for r in rss])
                print("  %-8s %s: %s ms, %s MiB" % (fmt, what, secs, rss),
                      flush=True)

    def machine(self):
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        fs = run("df", "-T", self.work).stdout.splitlines()[-1].split()[1]
        return {"cpu": cpu, "cores": os.cpu_count(),
                "kernel": platform.release(), "filesystem": fs,
                "memory GiB": round(os.sysconf("SC_PAGE_SIZE") *
                                    os.sysconf("SC_PHYS_PAGES") / GiB)}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes and one repetition, to keep it working")
    p.add_argument("--work", default=os.path.join(TOP, "build", "bench"),
                   help="scratch directory (the storage measured)")
    p.add_argument("--out", default=None, help="results JSON file")
    p.add_argument("--doc", action="store_true",
                   help="rewrite docs/performance.rst and the plot")
    p.add_argument("--only", action="append", default=[],
                   help="run only the tests whose name contains this "
                   "(repeatable); 'storage' names the storage probe, and "
                   "of the qemu-img measurements, 'convert', 'snapshot' "
                   "and 'extents' name theirs")
    p.add_argument("--reps", type=lambda v: max(1, int(v)), default=None,
                   help="repetitions of every measurement (default 5; 1 "
                   "with --smoke)")
    p.add_argument("--malloc-default", action="store_true",
                   help="run qemu-storage-daemon with glibc's default "
                   "malloc thresholds (see KEEP_BUFFERS)")
    args = p.parse_args()
    Export.env = {} if args.malloc_default else KEEP_BUFFERS
    if args.smoke:
        size, reps, args.seconds = 32 * MiB, 1, 1
        args.convert_size, args.snapshot_sizes, args.extents = \
            32 * MiB, [8 * MiB], 2000
        args.new_space_size = args.probe_bytes = 64 * MiB
    else:
        size, reps, args.seconds = 1 * GiB, 5, 5
        args.convert_size, args.snapshot_sizes, args.extents = \
            2 * GiB, [1 * GiB, 16 * GiB], 1000000
        # more than 5 s of writes reach on any disk here (the suite needs
        # that much free space, as cloudfs's timed runs do already)
        args.new_space_size = 32 * GiB
        # what 1 MiB writes at QD4 move in a few seconds here
        args.probe_bytes = 8 * GiB
    args.size = size
    args.reps = args.reps or reps
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    out = args.out or os.path.join(TOP, "build", "bench-results.json")
    report = {"started": started, "command": shlex.join(sys.argv),
              "smoke": args.smoke, "daemon environment": Export.env}
    suite = Suite(args)

    def save():
        # after every part, so that one that fails loses nothing before it
        report.update(machine=suite.machine(), results=suite.results)
        with open(out, "w") as f:
            json.dump(report, f, indent=1)

    suite.saver = save
    save()      # a run that records nothing still leaves its report
    try:
        suite.fio_tests()
        for part in ("storage", "convert", "snapshot", "extents"):
            names = [part] + ([STORAGE_TEST] if part == "storage" else [])
            if not args.only or any(o in n for o in args.only
                                    for n in names):
                getattr(suite, {"snapshot": "snapshots"}.get(part, part))()
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    print("results: %s" % out)
    if args.doc:
        import report as rep
        rep.write(report, TOP)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
