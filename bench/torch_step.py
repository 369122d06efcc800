#!/usr/bin/env python3
"""PyTorch eager reference for `boltzmann bench train`: tokens/s of one training step.

Builds the same LLaMA that boltzmann trains (presets copied from src/hparams.ts, or an
--hparams JSON file with the keys resolveHparams accepts), then times warm-up and timed
steps of forward + next-token cross-entropy + backward + clip_grad_norm_(1.0) +
AdamW(lr, betas 0.9/0.95, eps, weight decay 0.1) on random token ids. Prints the median
step time, tokens/s, achieved GFLOP/s with the FLOP formula of src/bench/train.ts, and
peak memory. Run it beside `boltzmann bench train` on the same machine and divide the
tokens/s figures (see bench/README.md).

The model is `transformers.LlamaForCausalLM(LlamaConfig(...))` when transformers is
importable (--impl hf), else a compact LLaMA in plain torch (--impl plain) with the same
math as src/model/reference.ts: RMSNorm, rotate-half RoPE, grouped KV heads, SwiGLU,
untied head unless tie_word_embeddings.

    python3 bench/torch_step.py --preset tiny --device cpu --steps 5
    python3 bench/torch_step.py --preset seed --device cuda --dtype bfloat16 --json

Needs only torch (Debian: apt-get install python3-torch libopenblas0-pthread).
Not part of the test suite.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

# What both presets take from the original hparams.json unchanged (as src/hparams.ts).
_SHARED = {
    "pages_per_window": 1,
    "rows_per_page": 100,
    "optimizer_beta1": 0.9,
    "optimizer_beta2": 0.95,
    "optimizer_eps": 1e-8,
    "optimizer_weight_decay": 0.1,
    "grad_clip": 1.0,
    "max_history": 10,
}

# The two presets of src/hparams.ts, in the original hparams.json key names (the names
# `--hparams FILE` uses). Keep in step with that file.
PRESETS = {
    "tiny": {
        **_SHARED,
        "vocab_size": 32000,
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000,
        "tie_word_embeddings": False,
        "sequence_length": 128,
        "batch_size": 8,
        "window_length": 5,
        "compression": 10,
        "learning_rate": 3e-3,
        "validator_moving_alpha": 0.9,
        "weights_interval": 2,
        "checkpoint_interval": 10,
    },
    # The original boltzmann's hparams.json (16 layers, hidden 2048, seq 2048, ≈1.2 B).
    "seed": {
        **_SHARED,
        "vocab_size": 32000,
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000,
        "tie_word_embeddings": False,
        "sequence_length": 2048,
        "batch_size": 6,
        "window_length": 2,
        "compression": 100,
        "learning_rate": 7.5e-5,
        "validator_moving_alpha": 0.999,
        "weights_interval": 10,
        "checkpoint_interval": 100,
    },
}

MAX_HPARAMS_BYTES = 64 * 1024


class UsageError(Exception):
    """A bad flag, preset, file or key: one line, exit code 2."""


def resolve_hparams(preset, file):
    """Preset + optional override file, validated like src/hparams.ts resolveHparams."""
    overrides = {}
    if file:
        try:
            size = os.path.getsize(file)
            if size > MAX_HPARAMS_BYTES:
                raise UsageError(
                    f"Hyper-parameter file '{file}' is {size} bytes: the limit is {MAX_HPARAMS_BYTES}")
            with open(file, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise UsageError(f"Cannot read --hparams '{file}': {e.strerror}") from None
        try:
            overrides = json.loads(text)
        except ValueError as e:
            raise UsageError(f"Invalid --hparams '{file}': not JSON ({e})") from None
        if not isinstance(overrides, dict):
            raise UsageError(
                'Hyper-parameter overrides must be a JSON object like {"learning_rate": 1e-3}')
    name = preset or (overrides.get("preset") if isinstance(overrides.get("preset"), str) else None) \
        or "tiny"
    if name not in PRESETS:
        raise UsageError(f"Unknown preset '{name}': use one of {', '.join(PRESETS)}")
    hp = dict(PRESETS[name], preset=name)
    for k, v in overrides.items():
        if k in PRESETS[name]:
            hp[k] = v
        elif k != "preset" and not k.startswith("_"):
            raise UsageError(
                f"Unknown hyper-parameter '{k}': accepted keys are {', '.join(PRESETS[name])}")
    validate(hp)
    return hp


def validate(hp):
    """The checks of validateHparams that matter for a training step."""
    for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
              "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
              "sequence_length", "batch_size"):
        v = hp[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise UsageError(
                f"Invalid hyper-parameter '{k}': {json.dumps(v)}, expected an integer >= 1")
    for k in ("learning_rate", "optimizer_eps", "grad_clip", "rms_norm_eps", "rope_theta"):
        v = hp[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise UsageError(f"Invalid hyper-parameter '{k}': {json.dumps(v)}, expected a number > 0")
    for k in ("optimizer_beta1", "optimizer_beta2", "optimizer_weight_decay"):
        v = hp[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise UsageError(f"Invalid hyper-parameter '{k}': {json.dumps(v)}, expected 0 <= x < 1")
    if not isinstance(hp["tie_word_embeddings"], bool):
        raise UsageError("Invalid hyper-parameter 'tie_word_embeddings': expected true or false")
    h, nh, nkv = hp["hidden_size"], hp["num_attention_heads"], hp["num_key_value_heads"]
    if h % nh or (h // nh) % 2:
        raise UsageError(
            f"Invalid model shape: hidden_size {h} must be num_attention_heads {nh} × an even head size")
    if nh % nkv:
        raise UsageError(
            f"Invalid model shape: num_attention_heads {nh} must be a multiple of num_key_value_heads {nkv}")
    if hp["sequence_length"] > hp["max_position_embeddings"]:
        raise UsageError(
            f"Invalid hyper-parameter 'sequence_length': {hp['sequence_length']} exceeds "
            f"max_position_embeddings {hp['max_position_embeddings']}")


def param_count(hp):
    """Scalars in the HF parameter table (src/model/params.ts) and in its Linear weights."""
    v, h, i, n = hp["vocab_size"], hp["hidden_size"], hp["intermediate_size"], hp["num_hidden_layers"]
    kv = hp["num_key_value_heads"] * (h // hp["num_attention_heads"])
    per_layer_linear = 2 * h * h + 2 * kv * h + 3 * i * h
    linear = n * per_layer_linear + (0 if hp["tie_word_embeddings"] else v * h)
    total = v * h + linear + n * 2 * h + h
    return total, linear


def flops_per_token(hp, seq):
    """src/bench/train.ts flopsPerToken: 6 · Linear weights (LM head included, tied or
    not; the embedding lookup multiplies nothing) + 12 · layers · T · H for attention."""
    _, linear = param_count(hp)
    head_if_tied = hp["vocab_size"] * hp["hidden_size"] if hp["tie_word_embeddings"] else 0
    return 6 * (linear + head_if_tied) + 12 * hp["num_hidden_layers"] * seq * hp["hidden_size"]


def build_hf(hp, attn):
    from transformers import LlamaConfig, LlamaForCausalLM
    kw = {} if attn == "auto" else {"attn_implementation": attn}
    cfg = LlamaConfig(
        vocab_size=hp["vocab_size"],
        hidden_size=hp["hidden_size"],
        intermediate_size=hp["intermediate_size"],
        num_hidden_layers=hp["num_hidden_layers"],
        num_attention_heads=hp["num_attention_heads"],
        num_key_value_heads=hp["num_key_value_heads"],
        max_position_embeddings=hp["max_position_embeddings"],
        rms_norm_eps=hp["rms_norm_eps"],
        rope_theta=hp["rope_theta"],
        tie_word_embeddings=hp["tie_word_embeddings"],
        hidden_act="silu",
        initializer_range=0.02,
        use_cache=False,
        **kw,
    )
    model = LlamaForCausalLM(cfg)
    label = getattr(model.config, "_attn_implementation", None) or attn

    def loss_fn(ids):
        # transformers shifts labels itself: mean over positions 0..T-2 of every row.
        return model(input_ids=ids, labels=ids, use_cache=False).loss

    return model, loss_fn, f"hf ({label})"


def build_plain(hp, attn):
    import torch
    from torch import nn
    import torch.nn.functional as F

    H, NH, NKV = hp["hidden_size"], hp["num_attention_heads"], hp["num_key_value_heads"]
    D, I, V = H // NH, hp["intermediate_size"], hp["vocab_size"]
    eps, theta = hp["rms_norm_eps"], float(hp["rope_theta"])
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    use_sdpa = sdpa is not None and attn != "eager"

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(H))

        def forward(self, x):  # as HF: normalise in float32, cast back, then scale
            xf = x.float()
            xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
            return self.weight * xf.to(x.dtype)

    def rotate_half(x):
        return torch.cat((-x[..., D // 2:], x[..., :D // 2]), dim=-1)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = nn.Linear(H, NH * D, bias=False)
            self.k_proj = nn.Linear(H, NKV * D, bias=False)
            self.v_proj = nn.Linear(H, NKV * D, bias=False)
            self.o_proj = nn.Linear(NH * D, H, bias=False)

        def forward(self, x, cos, sin):
            B, T, _ = x.shape
            q = self.q_proj(x).view(B, T, NH, D).transpose(1, 2)
            k = self.k_proj(x).view(B, T, NKV, D).transpose(1, 2)
            v = self.v_proj(x).view(B, T, NKV, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if NKV != NH:  # repeat_kv: query head n reads kv head n // (NH / NKV)
                k = k.repeat_interleave(NH // NKV, dim=1)
                v = v.repeat_interleave(NH // NKV, dim=1)
            if use_sdpa:
                o = sdpa(q, k, v, is_causal=True)
            else:
                s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
                s = s.masked_fill(mask, float("-inf"))
                o = torch.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype) @ v
            return self.o_proj(o.transpose(1, 2).reshape(B, T, NH * D))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate_proj = nn.Linear(H, I, bias=False)
            self.up_proj = nn.Linear(H, I, bias=False)
            self.down_proj = nn.Linear(I, H, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attention()
            self.mlp = MLP()
            self.input_layernorm = RMSNorm()
            self.post_attention_layernorm = RMSNorm()

        def forward(self, x, cos, sin):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin)
            return x + self.mlp(self.post_attention_layernorm(x))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(V, H)
            self.layers = nn.ModuleList(Layer() for _ in range(hp["num_hidden_layers"]))
            self.norm = RMSNorm()

    class Llama(nn.Module):  # attribute names give HF's parameter names
        def __init__(self):
            super().__init__()
            self.model = Decoder()
            if not hp["tie_word_embeddings"]:
                self.lm_head = nn.Linear(H, V, bias=False)
            for m in self.modules():  # HF init: normal(0, 0.02), norms at one
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, std=0.02)

        def forward(self, ids):
            B, T = ids.shape
            inv = 1.0 / theta ** (torch.arange(0, D, 2, device=ids.device, dtype=torch.float32) / D)
            ang = torch.outer(torch.arange(T, device=ids.device, dtype=torch.float32), inv)
            ang = torch.cat((ang, ang), dim=-1)
            x = self.model.embed_tokens(ids)
            cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
            for layer in self.model.layers:
                x = layer(x, cos, sin)
            # As boltzmann's graph: drop the last position before the LM head.
            x = self.model.norm(x[:, :-1])
            w = self.model.embed_tokens.weight if hp["tie_word_embeddings"] else self.lm_head.weight
            logits = F.linear(x, w)
            return F.cross_entropy(logits.reshape(-1, V).float(), ids[:, 1:].reshape(-1))

    model = Llama()
    return model, model, "plain (sdpa)" if use_sdpa else "plain (eager attention)"


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # kB on Linux


def main():
    ap = argparse.ArgumentParser(
        description="PyTorch eager training-step throughput of boltzmann's LLaMA "
                    "(reference for `boltzmann bench train`)")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="model and batch preset (default tiny)")
    ap.add_argument("--hparams", help="JSON overrides with the keys of boltzmann's --hparams")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--batch", type=int, help="rows per step (default: the preset's batch_size)")
    ap.add_argument("--seq", type=int, help="tokens per row (default: the preset's sequence_length)")
    ap.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="float32, or bfloat16 autocast over float32 parameters")
    ap.add_argument("--impl", choices=["auto", "hf", "plain"], default="auto",
                    help="transformers LlamaForCausalLM (hf) or the built-in model (plain); "
                         "auto = hf when transformers imports")
    ap.add_argument("--attn", choices=["auto", "eager", "sdpa"], default="auto",
                    help="attention kernel (auto: the library's default, sdpa where it exists)")
    ap.add_argument("--fused-adamw", action="store_true",
                    help="torch.optim.AdamW(fused=True) (CUDA, torch >= 2.0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()

    try:
        hp = resolve_hparams(args.preset, args.hparams)
        if args.batch is not None:
            hp["batch_size"] = args.batch
        if args.seq is not None:
            hp["sequence_length"] = args.seq
        validate(hp)
        if args.steps < 1 or args.warmup < 0:
            raise UsageError("--steps must be >= 1 and --warmup >= 0")
        if args.threads is not None and args.threads < 1:
            raise UsageError("--threads must be >= 1")
        if hp["sequence_length"] < 2:
            raise UsageError("--seq must be >= 2 (the loss predicts token t+1 from t)")
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2

    # libgomp's default spin-waiting made torch's CPU step 2-5x slower on a shared,
    # oversubscribed machine (bench/README.md); must be set before torch loads libgomp.
    omp_wait = os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        print("Cannot import torch: install it (pip install torch, or apt-get install python3-torch)",
              file=sys.stderr)
        return 1
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"CUDA is not available to torch {torch.__version__}: use --device cpu or a CUDA build",
              file=sys.stderr)
        return 1
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)

    impl = args.impl
    if impl == "auto":
        try:
            import transformers  # noqa: F401
            impl = "hf"
        except ImportError:
            impl = "plain"
    try:
        model, loss_fn, impl_label = (build_hf if impl == "hf" else build_plain)(hp, args.attn)
    except ImportError as e:
        print(f"Cannot build the transformers model ({e}): install transformers or use --impl plain",
              file=sys.stderr)
        return 1
    model.to(dev)
    model.train()
    P = sum(p.numel() for p in model.parameters())
    P_table, _ = param_count(hp)
    if P != P_table:
        print(f"Model has {P} parameters, boltzmann's table {P_table}: the configs differ",
              file=sys.stderr)
        return 1

    opt_kw = {"fused": True} if args.fused_adamw else {}
    opt = torch.optim.AdamW(
        model.parameters(), lr=hp["learning_rate"],
        betas=(hp["optimizer_beta1"], hp["optimizer_beta2"]),
        eps=hp["optimizer_eps"], weight_decay=hp["optimizer_weight_decay"], **opt_kw)
    B, T, V = hp["batch_size"], hp["sequence_length"], hp["vocab_size"]
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, V, (B, T), generator=gen, dtype=torch.long).to(dev)
    amp = args.dtype == "bfloat16"

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    grad_ms, opt_ms, losses = [], [], []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for s in range(args.warmup + args.steps):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(ids)
        loss.backward()
        sync()
        t1 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        t2 = time.perf_counter()
        losses.append(loss.detach())
        if s >= args.warmup:
            grad_ms.append((t1 - t0) * 1000)
            opt_ms.append((t2 - t1) * 1000)
        if not args.json:
            print(f"  step {s + 1}/{args.warmup + args.steps}"
                  f"{' (warm-up)' if s < args.warmup else ''}: {(t2 - t0) * 1000:.1f} ms",
                  file=sys.stderr, flush=True)

    step_ms = statistics.median(grad_ms) + statistics.median(opt_ms)
    tok_s = B * T / (step_ms / 1000)
    fpt = flops_per_token(hp, T)
    out = {
        "reference": "pytorch-eager",
        "preset": hp["preset"],
        "impl": impl_label,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "dtype": args.dtype,
        "threads": threads,
        "omp_wait_policy": omp_wait,
        "parameters": P,
        "batch": [B, T],
        "steps": args.steps,
        "loss_and_grad_ms": round(statistics.median(grad_ms), 1),
        "optimizer_ms": round(statistics.median(opt_ms), 1),
        "step_ms": round(step_ms, 1),
        "step_ms_mean": round(statistics.mean(g + o for g, o in zip(grad_ms, opt_ms)), 1),
        "tokens_per_s": round(tok_s),
        "flops_per_token": fpt,
        "achieved_gflops": round(fpt * tok_s / 1e9, 1),
        "loss_first": round(losses[0].item(), 4),
        "loss_last": round(losses[-1].item(), 4),
        "peak_rss_mb": peak_rss_mb(),
    }
    if dev.type == "cuda":
        out["peak_cuda_allocated_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20)
        out["peak_cuda_reserved_mb"] = round(torch.cuda.max_memory_reserved(dev) / 2**20)
    if args.json:
        print(json.dumps(out))
    else:
        mem = f"peak RSS {out['peak_rss_mb']} MB"
        if dev.type == "cuda":
            mem += (f", CUDA allocated {out['peak_cuda_allocated_mb']} MB "
                    f"(reserved {out['peak_cuda_reserved_mb']} MB)")
        print(
            f"torch eager  preset={out['preset']} impl={impl_label} torch={out['torch']} "
            f"device={out['device']} dtype={args.dtype} threads={threads} (OMP_WAIT_POLICY={omp_wait}) "
            f"params={P} batch={B}x{T}\n"
            f"  step {out['step_ms']} ms (loss+grad {out['loss_and_grad_ms']}, "
            f"clip+AdamW {out['optimizer_ms']})  {out['tokens_per_s']} tok/s  "
            f"{out['achieved_gflops']} GFLOP/s\n"
            f"  loss {out['loss_first']} -> {out['loss_last']}  {mem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
