#!/usr/bin/env python3
"""Independent Python (numpy) implementation of protocol v2's bit-exact parts.

docs/PROTOCOL.md, "Codecs", "Aggregation", "Outer step" and "Digests": codec encode
with error feedback and decode, aggregation, the outer AdamW step and the digests.
Writes tests/vectors/protocol.json, which src/protocol/vectors_test.ts checks the
TypeScript modules against bit for bit.
Usage: python3 scripts/protocol_ref.py > tests/vectors/protocol.json

Every float operation is one IEEE-754 float64 operation on float32 inputs, with float32
rounding exactly where the spec stores a float32; sums run sequentially in index order
(np.add.accumulate, never np.sum's pairwise order).
"""
import hashlib
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from window_ref import slice_indices  # noqa: E402

F32, F64 = np.float32, np.float64
S4_LEVELS = [-1.5104, -0.4528, 0.4528, 1.5104]
S4_CUT = 0.9816
S3_LEVELS = [-1.224, 0.0, 1.224]
S3_CUT = 0.612
S8_LEVELS = [-2.152, -1.344, -0.756, -0.2451, 0.2451, 0.756, 1.344, 2.152]
S8_CUTS = [0.5006, 1.05, 1.748]
MAX_SCALE = 1e30


def seqsum(a):
    a = np.asarray(a, dtype=F64)
    return float(np.add.accumulate(a)[-1]) if a.size else 0.0


def fround(x):
    return float(F32(x))


def hexf32(a):
    return np.asarray(a, dtype="<f4").tobytes().hex()


def unhexf32(h):
    return np.frombuffer(bytes.fromhex(h), dtype="<f4").copy()


# ---- packing ----

def pack_bits(codes, bits):
    out = bytearray((len(codes) * bits + 7) // 8)
    pos = 0
    for c in codes:
        for b in range(bits):
            if (c >> b) & 1:
                out[(pos + b) >> 3] |= 1 << ((pos + b) & 7)
        pos += bits
    return bytes(out)


def pack_trits(trits):
    out = bytearray((len(trits) + 4) // 5)
    for b in range(len(out)):
        v = 0
        for j in range(4, -1, -1):
            i = b * 5 + j
            v = v * 3 + (trits[i] if i < len(trits) else 0)
        out[b] = v
    return bytes(out)


def unpack_bits(data, n, bits):
    assert len(data) == (n * bits + 7) // 8
    out = []
    for i in range(n):
        c = 0
        for b in range(bits):
            p = i * bits + b
            c |= ((data[p >> 3] >> (p & 7)) & 1) << b
        out.append(c)
    return out


def unpack_trits(data, n):
    out = []
    for v in data:
        assert v < 243
        for _ in range(5):
            out.append(v % 3)
            v //= 3
    assert all(t == 0 for t in out[n:])
    return out[:n]


# ---- codecs ----

def parse(name):
    p = name.split(":")
    if p[0] == "f32":
        return {"name": "f32", "kind": "f32"}
    if p[0] == "dense":
        c = int(p[2]) if len(p) > 2 else 128
        rest = p[3] if len(p) > 3 else p[1]
        tail = "" if rest == p[1] else f":{rest}"
        return {"name": f"dense:{p[1]}:{c}{tail}", "kind": "dense", "quant": p[1],
                "rest": rest, "chunk": c}
    if p[0] == "topk":
        q = p[3] if len(p) > 3 else "b2"
        return {"name": f"topk:{p[1]}:{p[2]}:{q}", "kind": "topk", "chunk": int(p[1]),
                "k": int(p[2]), "quant": q}
    if p[0] == "slices":
        return {"name": f"slices:{p[1]}", "kind": "slices", "compression": int(p[1])}
    raise ValueError(name)


VOCAB_TENSORS = ("model.embed_tokens.weight", "lm_head.weight")


def quant_of(spec, name):
    """A dense spec's QUANT for the vocabulary tensors, REST for every other."""
    if spec["kind"] != "dense":
        return spec.get("quant")
    return spec["quant"] if name in VOCAB_TENSORS else spec["rest"]


def js_round_nonneg(v):
    """JavaScript Math.round for v >= 0: nearest integer, ties up."""
    r = math.floor(v)
    return r + (1 if v - r >= 0.5 else 0)


def dense_bits(q):
    return int(q[1:]) if q[0] in "qe" else {"s4": 2, "s8": 3}.get(q, 0)


def scale_dtype(q):
    return "BF16" if q == "s8" else "F32"


def bf16_round(x):
    """float32 x rounded to bfloat16 (nearest, ties to even), as a float."""
    u = int(np.array([x], dtype="<f4").view("<u4")[0])
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return float(np.array([u], dtype="<u4").view("<f4")[0])


def scale_bytes(q, scales):
    a = np.array(scales, dtype="<f4")
    if scale_dtype(q) == "F32":
        return a.tobytes()
    return (a.view("<u4") >> 16).astype("<u2").tobytes()


def scales_from(q, raw):
    if scale_dtype(q) == "F32":
        return np.frombuffer(raw, dtype="<f4")
    return (np.frombuffer(raw, dtype="<u2").astype("<u4") << 16).view("<f4")


def exp_ratio(b):
    return {2: 8, 3: 4, 4: 2}[b]


def exp_cuts(b):
    r, out, p = exp_ratio(b), [], 1
    for _ in range((1 << (b - 1)) - 1):
        out.append(math.sqrt(1 / r) / p)
        p *= r
    return out


def dense_level(q, code):
    if q == "s4":
        return S4_LEVELS[code]
    if q == "s3":
        return S3_LEVELS[code]
    if q == "s8":
        return S8_LEVELS[code]
    b = int(q[1:])
    m = (1 << (b - 1)) - 1
    mag = code & m
    if q[0] == "e":
        lv = 1.0
        for _ in range(mag):
            lv /= exp_ratio(b)
        return -lv if code >> (b - 1) else lv
    return -(mag / m) if code >> (b - 1) else mag / m


def dense_scale(q, x):
    if q[0] in "qe":
        return float(np.max(np.abs(x.astype(F64))))
    x64 = x.astype(F64)
    s = fround(math.sqrt(seqsum(x64 * x64) / len(x)))
    return bf16_round(s) if scale_dtype(q) == "BF16" else s


def dense_code(q, t):
    if q == "s4":
        return 0 if t < -S4_CUT else 1 if t < 0 else 2 if t < S4_CUT else 3
    if q == "s3":
        return 0 if t < -S3_CUT else 1 if t <= S3_CUT else 2
    if q == "s8":
        a = abs(t)
        k = 0 if a < S8_CUTS[0] else 1 if a < S8_CUTS[1] else 2 if a < S8_CUTS[2] else 3
        return 3 - k if t < 0 else 4 + k
    b = int(q[1:])
    if q[0] == "e":
        cuts, k = exp_cuts(b), 0
        while k < len(cuts) and abs(t) < cuts[k]:
            k += 1
        return ((1 if t < 0 else 0) << (b - 1)) | k
    m = (1 << (b - 1)) - 1
    mag = min(m, js_round_nonneg(abs(t) * m))
    return 0 if mag == 0 else ((1 if t < 0 else 0) << (b - 1)) | mag


def index_bits(c):
    return max(1, (c - 1).bit_length())


def encode_tensor(spec, name, x, seed):
    """Returns ([(tensor name, dtype, bytes)], decoded float32 array)."""
    n = len(x)
    dec = np.zeros(n, dtype=F32)
    if spec["kind"] == "f32":
        return [(name, "F32", x.astype("<f4").tobytes())], x.copy()
    if spec["kind"] == "slices":
        idx = slice_indices(seed, name, n, spec["compression"])
        v = x[idx]
        dec[idx] = v
        return [(name, "F32", v.astype("<f4").tobytes())], dec
    C, q = spec["chunk"], quant_of(spec, name)
    nc = (n + C - 1) // C
    if spec["kind"] == "dense":
        scales, codes = [], []
        for c in range(nc):
            lo, hi = c * C, min(n, (c + 1) * C)
            s = dense_scale(q, x[lo:hi])
            scales.append(s)
            if not s > 0:
                continue
            for i in range(lo, hi):
                code = dense_code(q, float(x[i]) / s)
                codes.append(code)
                dec[i] = F32(dense_level(q, code) * s)
        packed = pack_trits(codes) if q == "s3" else pack_bits(codes, dense_bits(q))
        sent = [v for v in scales if v > 0]
        out = [(f"{name}.scale", scale_dtype(q), scale_bytes(q, sent)),
               (f"{name}.code", "U8", packed)]
        if len(sent) < nc:  # chunks of scale 0 are marked in a mask, not sent
            mask = pack_bits([1 if v > 0 else 0 for v in scales], 1)
            out.insert(0, (f"{name}.mask", "U8", mask))
        return out, dec
    k = spec["k"]
    counts, scales, idx_codes, val_codes, vals = [], [], [], [], []
    for c in range(nc):
        lo, hi = c * C, min(n, (c + 1) * C)
        a = np.abs(x[lo:hi].astype(F64))
        nz = a[a > 0]
        if len(nz) <= k:
            keep = [lo + i for i in range(hi - lo) if a[i] > 0]
        else:
            t = np.sort(nz)[::-1][k - 1]
            ties = k - int(np.count_nonzero(a > t))
            keep = []
            for i in range(hi - lo):
                if a[i] > t:
                    keep.append(lo + i)
                elif a[i] == t and ties > 0:
                    keep.append(lo + i)
                    ties -= 1
        counts.append(len(keep))
        idx_codes += [i - lo for i in keep]
        if q == "f32":
            for i in keep:
                vals.append(x[i])
                dec[i] = x[i]
            continue
        absk = [abs(float(x[i])) for i in keep]
        mean = seqsum(absk) / len(keep) if keep else 0.0
        if q == "b1":
            s = fround(mean)
            scales.append(s)
            for i in keep:
                neg = 1 if x[i] < 0 else 0
                val_codes.append(neg)
                dec[i] = F32((-1.0 if neg else 1.0) * s)
            continue
        low = [v for v in absk if not v > mean]
        high = [v for v in absk if v > mean]
        lo_ = fround(seqsum(low) / len(low)) if low else 0.0
        hi_ = fround(seqsum(high) / len(high)) if high else lo_
        scales += [lo_, hi_]
        for i in keep:
            neg = 1 if x[i] < 0 else 0
            big = 1 if abs(float(x[i])) > mean else 0
            val_codes.append((neg << 1) | big)
            dec[i] = F32((-1.0 if neg else 1.0) * (hi_ if big else lo_))
    cdt = "U16" if k > 255 else "U8"
    cbytes = np.array(counts, dtype="<u2" if k > 255 else "u1").tobytes()
    out = [(f"{name}.count", cdt, cbytes), (f"{name}.index", "U8", pack_bits(idx_codes, index_bits(C)))]
    if q == "f32":
        out.append((f"{name}.value", "F32", np.array(vals, dtype="<f4").tobytes()))
    else:
        out.append((f"{name}.scale", "F32", np.array(scales, dtype="<f4").tobytes()))
        out.append((f"{name}.code", "U8", pack_bits(val_codes, 2 if q == "b2" else 1)))
    return out, dec


def decode_tensor(spec, tensors, name, n, seed):
    """The decoder, independent of the encoder: checks what decode checks and rebuilds."""
    out = np.zeros(n, dtype=F32)
    if spec["kind"] in ("f32", "slices"):
        v = np.frombuffer(tensors[name], dtype="<f4")
        assert np.all(np.isfinite(v))
        if spec["kind"] == "f32":
            return v.copy()
        out[slice_indices(seed, name, n, spec["compression"])] = v
        return out
    C, q = spec["chunk"], quant_of(spec, name)
    nc = (n + C - 1) // C
    if spec["kind"] == "dense":
        sent = scales_from(q, tensors[f"{name}.scale"])
        assert np.all((sent > 0) & (sent <= MAX_SCALE))
        if f"{name}.mask" in tensors:
            raw_mask = tensors[f"{name}.mask"]
            marked = unpack_bits(raw_mask, nc, 1)
            assert not any((raw_mask[p >> 3] >> (p & 7)) & 1 for p in range(nc, 8 * len(raw_mask)))
            assert 0 < nc - sum(marked) and sum(marked) == len(sent)
            it = iter(sent)
            scales = [float(next(it)) if b else 0.0 for b in marked]
        else:
            assert len(sent) == nc
            scales = sent
        m = sum(min(n, (c + 1) * C) - c * C for c in range(nc) if scales[c] > 0)
        raw = tensors[f"{name}.code"]
        codes = unpack_trits(raw, m) if q == "s3" else unpack_bits(raw, m, dense_bits(q))
        j = 0
        for c in range(nc):
            s = float(scales[c])
            if not s > 0:
                continue
            for i in range(c * C, min(n, (c + 1) * C)):
                out[i] = F32(dense_level(q, codes[j]) * s)
                j += 1
        return out
    k = spec["k"]
    counts = np.frombuffer(tensors[f"{name}.count"], dtype="<u2" if k > 255 else "u1")
    total = int(counts.sum())
    idx = unpack_bits(tensors[f"{name}.index"], total, index_bits(C))
    if q == "f32":
        vals = np.frombuffer(tensors[f"{name}.value"], dtype="<f4")
    else:
        scales = np.frombuffer(tensors[f"{name}.scale"], dtype="<f4")
        codes = unpack_bits(tensors[f"{name}.code"], total, 2 if q == "b2" else 1)
    j = 0
    for c in range(nc):
        prev = -1
        for _ in range(int(counts[c])):
            i = idx[j]
            assert prev < i < min(n, (c + 1) * C) - c * C
            prev = i
            if q == "f32":
                v = vals[j]
            elif q == "b1":
                v = F32((-1.0 if codes[j] else 1.0) * float(scales[c]))
            else:
                s = float(scales[2 * c + (codes[j] & 1)])
                v = F32((-1.0 if codes[j] >> 1 else 1.0) * s)
            out[c * C + i] = v
            j += 1
    return out


def encode_update(spec, update, ef, seed):
    """ef += update; encode ef; ef -= decoded. Returns ({tensor: (dtype, bytes)}, decoded)."""
    tensors, decoded = {}, {}
    for name, u in update.items():
        e = (ef.get(name, np.zeros(len(u), dtype=F32)).astype(F64) + u.astype(F64)).astype(F32)
        ts, dec = encode_tensor(spec, name, e, seed)
        for tn, dt, b in ts:
            tensors[tn] = (dt, b)
        ef[name] = (e.astype(F64) - dec.astype(F64)).astype(F32)
        decoded[name] = dec
    return tensors, decoded


# ---- aggregation, outer step, digests ----

def norm(x):
    x64 = x.astype(F64)
    return math.sqrt(seqsum(x64 * x64))


def median(xs):
    s = sorted(xs)
    if not s:
        return 0.0
    h = len(s) // 2
    return s[h] if len(s) % 2 else (s[h - 1] + s[h]) / 2


def aggregate(peers):
    use = sorted([p for p in peers if math.isfinite(p["weight"]) and p["weight"] > 0],
                 key=lambda p: p["key"].encode())
    total = 0.0
    for p in use:
        total += p["weight"]
    out = {}
    for name, t0 in peers[0]["update"].items():
        xs = [p["update"][name] for p in use]
        norms = [norm(x) for x in xs]
        cap = median([v for v in norms if v > 0])
        s = np.zeros(len(t0), dtype=F64)
        for p, x, nv in zip(use, xs, norms):
            clip = cap / nv if nv > cap else 1.0
            f = (p["weight"] * clip) / total
            s = s + f * x.astype(F64)
        out[name] = s.astype(F32)
    return out


def preconditioner(state, name, eps):
    v = state["v"][name]
    if state["step"] == 0:
        return np.ones(len(v), dtype=F32)
    bc2 = 1 - state["b2pow"]
    return (np.sqrt(v.astype(F64) / bc2) + eps).astype(F32)


def outer_step(params, state, agg, hp):
    g = {}
    for name in params:
        a = agg[name]
        if hp.get("precondition"):
            d = preconditioner(state, name, hp["eps"])
            g[name] = (a.astype(F64) * d.astype(F64)).astype(F32)
        else:
            g[name] = a.copy()
    if hp["gradClip"] > 0:
        s = 0.0
        for x in g.values():
            x64 = x.astype(F64)
            s = float(np.add.accumulate(np.concatenate([[s], x64 * x64]))[-1])
        scale = min(1.0, hp["gradClip"] / (math.sqrt(s) + 1e-6))
        if scale < 1:
            for name in g:
                g[name] = (g[name].astype(F64) * scale).astype(F32)
    state["step"] += 1
    state["b1pow"] *= hp["beta1"]
    state["b2pow"] *= hp["beta2"]
    step_size = hp["learningRate"] / (1 - state["b1pow"])
    bc2_sqrt = math.sqrt(1 - state["b2pow"])
    decay = 1 - hp["learningRate"] * hp["weightDecay"]
    b1, b2 = hp["beta1"], hp["beta2"]
    c1, c2 = 1 - b1, 1 - b2
    for name, p in params.items():
        gi = g[name].astype(F64)
        m = (b1 * state["m"][name].astype(F64) + c1 * gi).astype(F32)
        v = (b2 * state["v"][name].astype(F64) + c2 * (gi * gi)).astype(F32)
        state["m"][name], state["v"][name] = m, v
        upd = (step_size * m.astype(F64)) / (np.sqrt(v.astype(F64)) / bc2_sqrt + hp["eps"])
        params[name] = (p.astype(F64) * decay - upd).astype(F32)


def params_digest(params):
    h = hashlib.sha256()
    for name, p in params.items():
        h.update(name.encode() + b"\0" + len(p).to_bytes(4, "little"))
        h.update(np.asarray(p, dtype="<f4").tobytes())
    return h.hexdigest()


def state_digest(state):
    h = hashlib.sha256()
    h.update(f"step={state['step']}\n".encode())
    h.update((params_digest(state["m"]) + "\n" + params_digest(state["v"])).encode())
    return h.hexdigest()


# ---- vectors ----

def inputs(seed, first="a.weight"):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(300) * 1e-3).astype(F32)
    a[128:256] = 0  # one all-zero chunk of 128
    a[5] = a[6] = F32(4e-3)  # a tie among the largest
    a[7] = -a[5]
    b = (rng.standard_normal(7) * 1e-2).astype(F32)
    return {first: a, "b.weight": b}


CODECS = ["f32", "dense:s8:16:q4", "dense:q4", "dense:q3:16", "dense:e3", "dense:e4:16", "dense:e2:32", "dense:s4", "dense:s8", "dense:s8:16", "dense:s3:128", "dense:s3:64",
          "topk:64:4", "topk:64:4:b1", "topk:64:4:f32", "topk:512:300:b2", "slices:10"]


def main():
    shapes = {"a.weight": [10, 30], "b.weight": [7]}
    out = {"shapes": shapes, "codecs": []}
    for name in CODECS:
        spec = parse(name)
        ef, windows = {}, []
        # A codec with REST codes its first tensor as the vocabulary's (QUANT), b with REST.
        first = "lm_head.weight" if spec.get("rest", spec.get("quant")) != spec.get("quant") \
            else "a.weight"
        for w in range(3):
            upd = inputs(w, first)
            seed = f"delta:{w}"
            tensors, decoded = encode_update(spec, upd, ef, seed)
            for pname, x in decoded.items():
                again = decode_tensor(spec, {k: v[1] for k, v in tensors.items()}, pname,
                                      len(x), seed)
                assert again.tobytes() == x.tobytes(), (name, pname)
            windows.append({
                "seed": seed,
                "update": {k: hexf32(v) for k, v in upd.items()},
                "tensors": {k: {"dtype": v[0], "hex": v[1].hex()} for k, v in tensors.items()},
                "decoded": {k: hexf32(v) for k, v in decoded.items()},
                "ef": {k: hexf32(v) for k, v in ef.items()},
            })
        entry = {"codec": spec["name"], "windows": windows}
        if first != "a.weight":
            entry["shapes"] = {first: shapes["a.weight"], "b.weight": shapes["b.weight"]}
        out["codecs"].append(entry)

    peers = []
    for k, wt in [("hk-c", 1.0), ("hk-a", 2.5), ("hk-b", 0.5), ("hk-d", 0.0), ("hk-e", 1.0)]:
        u = inputs(10 + len(peers))
        if k == "hk-e":
            u = {n: (x * 50).astype(F32) for n, x in u.items()}  # clipped to the median
        peers.append({"key": k, "weight": wt, "update": u})
    agg = aggregate(peers)
    out["aggregate"] = {
        "peers": [{"key": p["key"], "weight": p["weight"],
                   "update": {n: hexf32(x) for n, x in p["update"].items()}} for p in peers],
        "out": {n: hexf32(x) for n, x in agg.items()},
    }

    out["outer"] = []
    for pc in [False, True]:
        hp = {"learningRate": 3e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8,
              "weightDecay": 0.1, "gradClip": 0.02, "precondition": pc}
        params = {n: (x * 100).astype(F32) for n, x in inputs(20).items()}
        start = {n: hexf32(x) for n, x in params.items()}
        state = {"step": 0, "b1pow": 1.0, "b2pow": 1.0,
                 "m": {n: np.zeros(len(x), dtype=F32) for n, x in params.items()},
                 "v": {n: np.zeros(len(x), dtype=F32) for n, x in params.items()}}
        steps = []
        for s in range(4):
            a = inputs(30 + s)
            outer_step(params, state, a, hp)
            steps.append({
                "agg": {n: hexf32(x) for n, x in a.items()},
                "params": {n: hexf32(x) for n, x in params.items()},
                "params_digest": params_digest(params),
                "state_digest": state_digest(state),
            })
        out["outer"].append({"hp": hp, "params": start, "steps": steps})
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
