#!/usr/bin/env python3
"""Reproduce `boltzmann grad` with Hugging Face transformers + PyTorch.

Loads the same checkpoint directory as LlamaForCausalLM, computes the mean next-token
cross-entropy of the token rows (labels = input_ids: transformers shifts them, so the
loss averages positions 0..T-2 of every row) and every parameter's gradient, then
compares them with the gradient file `boltzmann grad --out` wrote.

    boltzmann grad --checkpoint ckpt --tokens tokens.json --out grads.safetensors --json
    python3 scripts/reference_grad.py --checkpoint ckpt --tokens tokens.json \
        --grads grads.safetensors --loss <loss printed above>

Needs: torch, transformers, safetensors (pip install torch transformers safetensors).
Exit code 0 when everything agrees within --rtol, 1 otherwise. See docs/CHECKPOINTS.md.
"""
import argparse
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="checkpoint directory")
    ap.add_argument("--tokens", required=True, help="JSON [[id, ...], ...]: B rows of T ids")
    ap.add_argument("--grads", help="gradient file written by boltzmann grad --out")
    ap.add_argument("--loss", type=float, help="loss printed by boltzmann grad")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--rtol", type=float, default=1e-4,
                    help="max |ours - torch| / max|torch| per tensor (default 1e-4)")
    args = ap.parse_args()

    dtype = getattr(torch, args.dtype)
    model = LlamaForCausalLM.from_pretrained(
        args.checkpoint, torch_dtype=dtype, attn_implementation="eager")
    model.train()  # LLaMA has no dropout; train mode only enables gradients everywhere
    with open(args.tokens) as f:
        ids = torch.tensor(json.load(f), dtype=torch.long)
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    loss = out.loss.item()
    print(f"torch loss {loss:.9g} over {ids.shape[0]}x{ids.shape[1]} tokens")

    ok = True
    if args.loss is not None:
        rel = abs(args.loss - loss) / abs(loss)
        print(f"boltzmann loss {args.loss:.9g}  relative difference {rel:.2e}")
        ok &= rel <= args.rtol
    if args.grads:
        ours = load_file(args.grads)
        # named_parameters() lists a tied head once, as model.embed_tokens.weight, whose
        # gradient already includes the head's share: boltzmann writes the same.
        theirs = {n: p.grad for n, p in model.named_parameters()}
        if set(ours) != set(theirs):
            print(f"tensor names differ: only in boltzmann {sorted(set(ours) - set(theirs))}, "
                  f"only in torch {sorted(set(theirs) - set(ours))}")
            return 1
        worst = 0.0
        for name, g in theirs.items():
            a = ours[name].to(torch.float64)
            b = g.to(torch.float64)
            if a.shape != b.shape:
                print(f"{name}: shape {tuple(a.shape)} vs torch {tuple(b.shape)}")
                return 1
            err = ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()
            cos = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()
            worst = max(worst, err)
            flag = "" if err <= args.rtol else "   <-- differs"
            print(f"{name:55s} rel.err {err:.2e}  cos {cos:.9f}{flag}")
        print(f"worst relative gradient error {worst:.2e} (tolerance {args.rtol:g})")
        ok &= worst <= args.rtol
    print("AGREE" if ok else "DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
