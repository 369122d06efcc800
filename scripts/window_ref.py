#!/usr/bin/env python3
"""Independent Python implementation of docs/PROTOCOL.md's derivations.

Writes tests/vectors/window.json, which tests/window_test.ts checks the TypeScript
module against. Written from the spec, not from the TypeScript code.
Usage: python3 scripts/window_ref.py > tests/vectors/window.json
"""
import hashlib
import json

M32 = 0xFFFFFFFF


def key_words(parts):
    d = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return [int.from_bytes(d[4 * i:4 * i + 4], "big") for i in range(8)]


def mix32(x):
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def feistel(key, n):
    bits = 2
    while (1 << bits) < n:
        bits += 1
    lb = bits // 2
    rb = bits - lb
    lm, rm = (1 << lb) - 1, (1 << rb) - 1

    def pi(x):
        while True:
            l, r = x >> rb, x & rm
            for i in range(6):
                if i % 2 == 0:
                    l ^= mix32((r + key[i]) & M32) & lm
                else:
                    r ^= mix32((l + key[i]) & M32) & rm
            x = (l << rb) | r
            if x < n:
                return x

    return pi


def slice_indices(seed, name, numel, compression):
    k = max(1, numel // compression)
    pi = feistel(key_words(["boltzmann/slice-indices/v1", seed, name, numel, compression]), numel)
    return sorted(pi(i) for i in range(k)) if k < numel else list(range(numel))


def pages(window, uid, n, total):
    pi = feistel(key_words(["boltzmann/pages/v1", window, total]), total)
    return [pi((uid * n + i) % total) for i in range(n)]


def main():
    h1 = "0x" + hashlib.sha256(b"block 10").hexdigest()
    h2 = "0x" + hashlib.sha256(b"block 15").hexdigest()
    out = {
        "windows": [
            {"block": b, "window_length": L, "window": b // L, "start": (b // L) * L,
             "state_seed_block": (b // L) * L, "delta_seed_block": (b // L + 1) * L}
            for b, L in [(0, 1), (7, 5), (10, 5), (14, 5), (123456, 2), (2**40 + 3, 7)]
        ],
        "indices": [
            {"seed": s, "name": nm, "numel": n, "compression": c, "indices": slice_indices(s, nm, n, c)}
            for s, nm, n, c in [
                ("state:" + h1, "model.norm.weight", 128, 10),
                ("delta:" + h1, "model.norm.weight", 128, 10),
                ("delta:" + h2, "model.layers.0.self_attn.q_proj.weight", 16384, 100),
                ("delta:" + h2, "lm_head.weight", 1000, 1),
                ("delta:" + h2, "x", 1, 100),
                ("delta:" + h2, "y", 5, 3),
                ("delta:" + h2, "z", 300000, 1000),
            ]
        ],
        "pages": [
            {"window": w, "uid": u, "n": n, "total_pages": t, "pages": pages(w, u, n, t)}
            for w, u, n, t in [(0, 0, 1, 10), (3, 1, 2, 50), (3, 2, 2, 50), (1000, 7, 4, 200), (5, 3, 3, 2)]
        ],
    }
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
