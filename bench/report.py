"""Turn bench/run.py results into docs/performance.rst and a plot of IOPS
against queue depth (matplotlib)."""
import os
import statistics


def median(samples, key=None):
    values = [s[key] if key else s for s in samples]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_num(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "n/a"


def paired(a, b, key):
    """Median ratio, and its range over the rounds: the formats take turns
    within a round (bench/run.py), so round i of one pairs with round i of
    the other."""
    if not a or not b:
        return "n/a"
    text = ratio(median(a, key), median(b, key))
    pairs = [x[key] / y[key] for x, y in zip(a, b) if y[key]]
    if len(a) == len(b) and len(pairs) > 1:
        text += " (%.2f-%.2f)" % (min(pairs), max(pairs))
    return text


def amplification_rows(res, key, only):
    """Rows of key's medians for the 4k random-write tests whose name
    contains only."""
    rows = []
    for name, by_fmt in res.items():
        sample = by_fmt.get("cloudfs", [None])[0]
        if isinstance(sample, dict) and sample.get(key) is not None and \
                name.startswith("randwrite 4k QD") and only in name:
            rows.append([name] + [fmt_num(median(by_fmt[f], key))
                                  if f in by_fmt else "n/a"
                                  for f in ("cloudfs", "qcow2", "raw")])
    return rows


def storage_table(res):
    """The storage probe (bench/run.py, Suite.storage): fio's writes to
    each kind of space, and their ratio to the first kind's (overwriting
    written blocks)."""
    by_kind = res.get("write 1M QD4, fio on a file without QEMU")
    if not by_kind:
        return []
    base_kind, base = next(iter(by_kind.items()))
    rows = [[kind, fmt_num(median(samples, "iops")),
             "1" if kind == base_kind else paired(samples, base, "iops")]
            for kind, samples in by_kind.items()]
    out = table("The storage alone: 1 MiB writes at QD4, fio on a file "
                "without QEMU (IOPS)", rows,
                ["space written", "IOPS", "ratio to the first row"])
    return out[:3] + [
        "What the file system and the disk below it charge for writing new",
        "space (a hole of a sparse file, or space ``fallocate``\\ d and not",
        "yet written) against overwriting blocks written before, each kind",
        "writing the same number of bytes; and what overwriting a file of",
        "the images' size again and again gains besides, as raw's timed",
        "runs above do from their second pass on.  A log always writes new",
        "space; ``write 1M QD4, new space`` above gives every format images",
        "too big to wrap around in the run.",
        ""] + out[3:]


def table(title, rows, header):
    out = [title, "~" * len(title), "", ".. list-table::", "   :header-rows: 1",
           ""]
    for i, row in enumerate([header] + rows):
        out.append("   * - " + row[0])
        out += ["     - " + c for c in row[1:]]
    return out + [""]


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    depths = [1, 4, 16, 32]
    fig, ax = plt.subplots(figsize=(6, 4))
    for fmt in ("cloudfs", "qcow2", "raw"):
        ys = []
        for d in depths:
            r = results.get("randwrite 4k QD%d, fresh" % d, {}).get(fmt)
            ys.append(median(r, "iops") if r else float("nan"))
        ax.plot(depths, ys, marker="o", label=fmt)
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_xlabel("queue depth")
    ax.set_ylabel("IOPS (4 KiB random writes, fresh image)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write(report, top):
    res = report["results"]
    m = report["machine"]
    lines = ["================", "cloudfs performance", "================", ""]
    lines[0] = lines[2] = "=" * len(lines[1])
    runs = report.get("runs") or [(report["command"], report["started"], [])]
    lines += ["Measured by ``%s`` on %s." % runs[0][:2], ""]
    for command, started, names in runs[1:]:
        lines += ["Measured again, replacing the figures above, by ``%s`` "
                  "on %s: %s." % (command, started, "; ".join(names)), ""]
    lines += [
        "Machine: %s, %d cores, %d GiB, Linux %s; images on %s." % (
            m["cpu"], m["cores"], m["memory GiB"], m["kernel"],
            m["filesystem"]),
        "",
        "cloudfs, qcow2 and raw images sit on the same file system and are",
        "measured in the same run.  I/O goes through qemu-storage-daemon",
        "(``cache.direct=on``, ``aio=io_uring``) exporting each image over",
        "NBD on a Unix socket, driven by fio's ``nbd`` engine.  Every figure",
        "is the median of the repetitions; the ratios are cloudfs's figure",
        "over qcow2's and over raw's (above 1 is better for IOPS and MB/s,",
        "below 1 is better for times and memory).  The formats take turns",
        "within each round of a test, and the range after a ratio is that",
        "of round-by-round ratios: how far the machine's noise moved it.",
        "Reproduce with",
        "``make bench`` (``bench/run.py --doc``).",
        "",
    ]
    env = report.get("daemon environment")
    if env:
        lines += [
            "qemu-storage-daemon ran with %s, so that freed request buffers "
            "stay mapped, as a guest's RAM does (``KEEP_BUFFERS`` in "
            "``bench/run.py`` says why)." % ", ".join(
                "``%s=%s``" % kv for kv in sorted(env.items())), ""]
    if report.get("smoke"):
        lines += ["**These are smoke-test figures (tiny sizes, one run): "
                  "they only show that the suite works.**", ""]
    rows = []
    for name, by_fmt in res.items():
        if "cloudfs" not in by_fmt:
            continue
        sample = by_fmt["cloudfs"][0]
        if isinstance(sample, dict):
            cl, qc, rw = (by_fmt.get(f, []) for f in ("cloudfs", "qcow2",
                                                       "raw"))
            rows.append([name + " (IOPS)"] +
                        [fmt_num(median(x, "iops") if x else None)
                         for x in (cl, qc, rw)] +
                        [paired(cl, qc, "iops"), paired(cl, rw, "iops")])
    lines += table("I/O through NBD", rows,
                   ["test", "cloudfs", "qcow2", "raw", "cloudfs/qcow2",
                    "cloudfs/raw"])
    lines += storage_table(res)
    lines += table("Write amplification (bytes the image file grew per "
                   "guest byte written)",
                   amplification_rows(res, "amplification", "fresh"),
                   ["test", "cloudfs", "qcow2", "raw"])
    # the daemon's write_bytes: zeros and metadata written count, space
    # only fallocated does not
    rows = amplification_rows(res, "device amplification", "")
    if rows:
        lines += table("Bytes written to storage per guest byte written",
                       rows, ["test", "cloudfs", "qcow2", "raw"])
    rows = []
    for name, by_fmt in res.items():
        # (the storage probe has no formats: storage_table)
        if "cloudfs" not in by_fmt or isinstance(by_fmt["cloudfs"][0], dict):
            continue
        c = median(by_fmt.get("cloudfs", []))
        q = median(by_fmt["qcow2"]) if "qcow2" in by_fmt else None
        r = median(by_fmt["raw"]) if "raw" in by_fmt else None
        rows.append([name, fmt_num(c), fmt_num(q), fmt_num(r), ratio(c, q),
                     ratio(c, r)])
        # what the snapshot itself takes: the same process without it
        base = res.get(name.replace("snapshot create", "snapshot list"))
        if name.startswith("snapshot create") and base:
            c, q = (median(by_fmt[f]) - median(base[f])
                    if f in by_fmt and f in base else None
                    for f in ("cloudfs", "qcow2"))
            rows.append([name.replace("create", "create less list"),
                         fmt_num(c), fmt_num(q), "n/a", ratio(c, q), "n/a"])
    lines += table("qemu-img", rows,
                   ["measurement", "cloudfs", "qcow2", "raw",
                    "cloudfs/qcow2", "cloudfs/raw"])
    lines += [".. image:: performance-iops-qd.png", "   :alt: IOPS against "
              "queue depth for cloudfs, qcow2 and raw", ""]
    notes = os.path.join(top, "bench", "analysis.rst")
    if os.path.exists(notes):
        with open(notes) as f:
            lines += [f.read()]
    with open(os.path.join(top, "docs", "performance.rst"), "w") as f:
        f.write("\n".join(lines))
    plot(res, os.path.join(top, "docs", "performance-iops-qd.png"))


def merge(reports):
    """One report from several runs: a test measured again in a later run
    takes that run's figures."""
    envs = {repr(r.get("daemon environment")) for r in reports}
    if len(envs) > 1:
        raise SystemExit("report: the runs ran the daemon in different "
                         "environments; their figures do not mix")
    out = dict(reports[0], results=dict(reports[0]["results"]))
    out["runs"] = [(r["command"], r["started"], list(r["results"]))
                   for r in reports]
    for r in reports[1:]:
        out["results"].update(r["results"])
    return out


if __name__ == "__main__":
    # bench/report.py RESULTS.json [MORE.json ...]: rewrite the docs from
    # saved results (later files replace the tests they measured again)
    import json
    import sys
    reports = []
    for path in sys.argv[1:]:
        with open(path) as f:
            reports.append(json.load(f))
    write(merge(reports), os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
