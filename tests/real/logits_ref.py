#!/usr/bin/env python3
"""Reduced logit references for the real-model tier (pure Python, no numpy).

A full logit dump ([n_pos][n_vocab] float32, e.g. 70 x 262144 x 4 = 70 MiB) is too big to
commit, so the reference keeps, per position, what the `quant` tier of
/work/shared/tools/cmp_logits.py looks at:

  * the reference's argmax over the FULL vocabulary (compared with our argmax over the full
    vocabulary), and its top-1/top-2 margin (printed when the argmaxes differ);
  * its logsumexp over the full vocabulary (printed: shows a shift of the whole distribution);
  * its stability: the full-vocabulary cosine between the reference and the same engine run
    with an F16 instead of F32 K cache. Where that rounding-sized perturbation alone moves
    the logits below STABLE, the position is chaotic (two correct engines can differ there
    by more than the tier allows), and it is printed but not scored;
  * its logits at a fixed id subset: the union of every position's top-K ids (the head) plus
    S ids evenly spaced over the vocabulary. The cosine is computed on that subset with each
    spaced id standing for (n_vocab - |head|) / |sample| tail ids, which estimates the
    full-vocabulary cosine that cmp_logits.py computes (a plain subset cosine would be
    dominated by the head and come out more lenient).

usage:
  logits_ref.py reduce FULL PERTURBED N_VOCAB OUT [TOP_K=64] [SPACED=1000]
  logits_ref.py compare REF GOT_FULL [exact|half|quant]      (exit 0 = within tolerance)
  logits_ref.py info REF

REF file, little-endian: b"TLRL", u32 version=1, n_pos, n_vocab, n_ids, n_head;
  i32 ids[n_ids]: the n_head head ids ascending, then the spaced ids not among them;
  per position: i32 argmax, f32 logsumexp, f32 margin, f32 stability;
  f32 logits[n_pos][n_ids].
"""
import array
import math
import struct
import sys

MAGIC = b"TLRL"
STABLE = 0.998
# cmp_logits.py's tiers, less max|d|/std (which needs the full vocabulary).
TIERS = {"exact": dict(mincos=0.99999, meancos=0.0, top1=0.98),
         "half": dict(mincos=0.9999, meancos=0.0, top1=0.95),
         "quant": dict(mincos=0.995, meancos=0.999, top1=0.85)}


def load_full(path, nv):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    if nv <= 0 or len(a) == 0 or len(a) % nv:
        sys.exit("%s: %d floats is not a positive multiple of n_vocab %d" % (path, len(a), nv))
    return [a[i:i + nv] for i in range(0, len(a), nv)]


def top2(row):
    best, second = 0, -1
    for j in range(1, len(row)):
        v = row[j]
        if v > row[best]:
            second, best = best, j
        elif second < 0 or v > row[second]:
            second = j
    return best, second


def logsumexp(row):
    m = max(row)
    return m + math.log(math.fsum(math.exp(x - m) for x in row))


def weighted_cos(r, g, w):
    dot = nr = ng = 0.0
    for a, b, k in zip(r, g, w):
        dot += k * a * b
        nr += k * a * a
        ng += k * b * b
    return dot / math.sqrt(nr * ng) if nr > 0 and ng > 0 else 0.0


def reduce_(full, perturbed, nv, out, top_k=64, spaced=1000):
    rows, pert = load_full(full, nv), load_full(perturbed, nv)
    if len(rows) != len(pert):
        sys.exit("%s and %s differ in positions" % (full, perturbed))
    head, stats = set(), []
    for r, q in zip(rows, pert):
        head.update(sorted(range(nv), key=r.__getitem__, reverse=True)[:top_k])
        b, s = top2(r)
        stats.append((b, logsumexp(r), r[b] - r[s], weighted_cos(r, q, [1.0] * nv)))
    tail = [i for i in range(0, nv, max(1, nv // spaced)) if i not in head]
    ids = sorted(head) + tail
    with open(out, "wb") as f:
        f.write(MAGIC + struct.pack("<5I", 1, len(rows), nv, len(ids), len(head)))
        f.write(struct.pack("<%di" % len(ids), *ids))
        for st in stats:
            f.write(struct.pack("<ifff", *st))
        sub = array.array("f", (r[i] for r in rows for i in ids))
        if sys.byteorder != "little":
            sub.byteswap()
        f.write(sub.tobytes())
    print("%s: %d positions, %d of %d ids (%d in a top-%d); unstable positions: %s" % (
        out, len(rows), len(ids), nv, len(head), top_k,
        " ".join("%d (%.5f)" % (p, st[3]) for p, st in enumerate(stats) if st[3] < STABLE)
        or "none"))


def load_ref(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != MAGIC or len(data) < 24:
        sys.exit("%s: not a reduced logit reference" % path)
    ver, n, nv, nid, n_head = struct.unpack_from("<5I", data, 4)
    if ver != 1 or n_head > nid or len(data) != 24 + 4 * nid + 16 * n + 4 * n * nid:
        sys.exit("%s: bad version or size" % path)
    ids = list(struct.unpack_from("<%di" % nid, data, 24))
    if any(i < 0 or i >= nv for i in ids):
        sys.exit("%s: id out of range" % path)
    off = 24 + 4 * nid
    stats = [struct.unpack_from("<ifff", data, off + 16 * p) for p in range(n)]
    off += 16 * n
    sub = array.array("f")
    sub.frombytes(data[off:])
    if sys.byteorder != "little":
        sub.byteswap()
    return nv, n_head, ids, stats, [sub[p * nid:(p + 1) * nid] for p in range(n)]


def compare(ref, got, tier="quant"):
    nv, n_head, ids, stats, sub = load_ref(ref)
    rows = load_full(got, nv)
    if len(rows) != len(stats):
        print("FAIL rows: reference has %d positions, got %d" % (len(stats), len(rows)))
        return 1
    w_tail = (nv - n_head) / max(1, len(ids) - n_head)
    w = [1.0 if k < n_head else w_tail for k in range(len(ids))]
    scored, skipped, agree, dlse, flips = [], [], 0, 0.0, []
    for p, (g, (ref_best, ref_lse, ref_margin, stab), r) in enumerate(zip(rows, stats, sub)):
        if any(math.isnan(x) or math.isinf(x) for x in g):
            print("FAIL got non-finite logits at position %d" % p)
            return 1
        c = weighted_cos(r, [g[i] for i in ids], w)
        if stab < STABLE:
            skipped.append("%d (cos %.5f, stability %.5f)" % (p, c, stab))
            continue
        scored.append((c, p))
        best = max(range(nv), key=g.__getitem__)
        if best == ref_best:
            agree += 1
        else:
            flips.append("%d (ref %d margin %.3f, got %d)" % (p, ref_best, ref_margin, best))
        dlse = max(dlse, abs(logsumexp(g) - ref_lse))
    if not scored:
        print("FAIL no stable position to score")
        return 1
    t = TIERS[tier]
    worst = min(scored)
    figs = dict(mincos=worst[0], meancos=sum(c for c, _ in scored) / len(scored),
                top1=agree / len(scored))
    ok = all(figs[k] >= t[k] for k in t)
    print("%s %s: min_cos=%.6f (pos %d) mean_cos=%.6f top1=%.1f%% max|dlogsumexp|=%.3f "
          "over %d positions (%d-id subset)" % (
              "PASS" if ok else "FAIL", tier, figs["mincos"], worst[1], figs["meancos"],
              100 * figs["top1"], dlse, len(scored), len(ids)))
    if flips:
        print("  argmax differs at: " + ", ".join(flips))
    if skipped:
        print("  not scored (unstable): " + ", ".join(skipped))
    return 0 if ok else 1


def info(ref):
    nv, n_head, ids, stats, _ = load_ref(ref)
    print("%d positions, n_vocab %d, %d ids (%d in a top-K)" % (len(stats), nv, len(ids), n_head))
    for p, (b, lse, mg, stab) in enumerate(stats):
        print("  pos %2d argmax %6d logsumexp %8.3f margin %6.3f stability %.5f%s" % (
            p, b, lse, mg, stab, "" if stab >= STABLE else "  (unstable: not scored)"))


def main(argv):
    if len(argv) in (6, 7, 8) and argv[1] == "reduce":
        reduce_(argv[2], argv[3], int(argv[4]), argv[5], *[int(x) for x in argv[6:8]])
        return 0
    if len(argv) in (4, 5) and argv[1] == "compare":
        return compare(argv[2], argv[3], argv[4] if len(argv) == 5 else "quant")
    if len(argv) == 3 and argv[1] == "info":
        info(argv[2])
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
