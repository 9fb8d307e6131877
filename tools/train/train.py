"""Trains the tiny KJV Mixtral on the CPU. Run with Debian's Python: /usr/bin/python3 tools/train/train.py --help

Random windows of context_length + 1 tokens from the training stream; AdamW with linear warmup and cosine decay;
loss = cross entropy + aux_coef * Mixtral's load-balancing loss. Writes to --out: log.jsonl (one JSON object per
logged step and per evaluation), checkpoint.pt (every --checkpoint-minutes, atomically replaced; --resume picks it
up) and final.pt.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

# libgomp's default busy-wait makes every parallel op stall when the cores are shared with other jobs
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus import evaluation_windows, load_tokens, split_documents  # noqa: E402
from model import Mixtral, ModelConfig, parameter_count  # noqa: E402
from runtime import configure_cpu  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=".cache/kjv", help="directory with train.u16 and heldout.u16")
    p.add_argument("--out", default=".cache/kjv/run", help="run directory (log, checkpoints)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--ffn", type=int, default=160, help="hidden size of one expert")
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--experts-used", type=int, default=2)
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--rope-base", type=float, default=10000.0)
    p.add_argument("--batch", type=int, default=8, help="sequences per step")
    p.add_argument("--steps", type=int, default=3000, help="schedule length in steps (unless --minutes)")
    p.add_argument("--minutes", type=float, default=0.0,
                   help="schedule by wall clock instead: cosine over this many minutes, then stop")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--aux-coef", type=float, default=0.02, help="Mixtral's router_aux_loss_coef")
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1, help="1 beats 2 while other jobs share the 2 cores")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--bench", type=int, default=0, help="time this many steps, print tokens/s, exit")
    return p.parse_args()


def schedule_progress(step: int, elapsed: float, args: argparse.Namespace) -> float:
    """Fraction of the schedule done: by wall clock with --minutes (so a run on shared cores ends on time)."""
    if args.minutes:
        return min(1.0, elapsed / (args.minutes * 60))
    return min(1.0, step / args.steps)


def learning_rate(step: int, progress: float, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    floor = args.lr * args.min_lr_ratio
    return floor + (args.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(model: Mixtral, windows: list[torch.Tensor], batch_size: int = 8) -> tuple[float, int]:
    """Mean next-token NLL (nats) over the held-out windows and the number of scored tokens."""
    model.eval()
    total, count = 0.0, 0
    length = model.config.context_length
    for i in range(0, len(windows), batch_size):
        chunk = windows[i:i + batch_size]
        ids = torch.zeros(len(chunk), length, dtype=torch.long)
        targets = torch.full((len(chunk), length), -100, dtype=torch.long)
        for row, window in enumerate(chunk):
            ids[row, :len(window)] = window
            targets[row, :len(window) - 1] = window[1:]
        hidden, _, _ = model.hidden(ids)
        total += model.token_nll(hidden, targets).sum().item()
        count += int((targets != -100).sum())
    model.train()
    return total / count, count


def make_optimizer(model: Mixtral, args: argparse.Namespace) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)


def save_atomically(obj: dict, path: str) -> None:
    temp = path + ".tmp"
    torch.save(obj, temp)
    os.replace(temp, path)


def main() -> None:
    args = parse_args()
    configure_cpu(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    config = ModelConfig(dim=args.dim, n_layers=args.layers, n_heads=args.heads, n_kv_heads=args.kv_heads,
                         ffn_dim=args.ffn, n_experts=args.experts, n_experts_used=args.experts_used,
                         context_length=args.context, rope_base=args.rope_base)
    train_ids = load_tokens(os.path.join(args.data, "train.u16"))
    model = Mixtral(config, own_row_ids=train_ids.unique())
    optimizer = make_optimizer(model, args)
    heldout_windows = evaluation_windows(split_documents(load_tokens(os.path.join(args.data, "heldout.u16"))),
                                         config.context_length)
    generator = torch.Generator().manual_seed(args.seed)

    step, elapsed_before = 0, 0.0
    checkpoint_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume and os.path.exists(checkpoint_path):
        state = torch.load(checkpoint_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, elapsed_before = state["step"], state["elapsed"]
        print(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained)", flush=True)

    tokens_per_step = args.batch * config.context_length
    print(f"config {json.dumps(config.to_dict())}\nparameters {parameter_count(model):,}; {tokens_per_step} tokens/step; "
          f"{len(train_ids):,} training tokens; {len(heldout_windows)} held-out windows", flush=True)

    log = open(os.path.join(args.out, "log.jsonl"), "a")

    def record(entry: dict) -> None:
        log.write(json.dumps(entry) + "\n")
        log.flush()

    def snapshot(elapsed: float) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                "step": step, "elapsed": elapsed, "config": config.to_dict(), "args": vars(args),
                "own_row_ids": model.own_row_ids}

    def record_evaluation() -> None:
        heldout_loss, scored = evaluate(model, heldout_windows)
        entry = {"step": step, "heldout_loss": heldout_loss, "heldout_ppl": math.exp(heldout_loss),
                 "heldout_tokens": scored, "elapsed": round(elapsed_before + time.time() - start, 1)}
        record(entry)
        print(json.dumps(entry), flush=True)

    start = time.time()
    last_checkpoint = start
    loss_sum = aux_sum = 0.0
    loss_count = 0
    stop_steps = args.bench if args.bench else (1 << 62 if args.minutes else args.steps)
    bench_start = None
    while step < stop_steps:
        if args.bench and step == 2:
            bench_start = time.time()  # the first steps warm up allocators
        progress = schedule_progress(step, elapsed_before + time.time() - start, args)
        if progress >= 1.0 and not args.bench:
            break
        lr = learning_rate(step, progress, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        offsets = torch.randint(0, len(train_ids) - config.context_length - 1, (args.batch,), generator=generator)
        batch = torch.stack([train_ids[o:o + config.context_length + 1] for o in offsets.tolist()])
        hidden, aux, _ = model.hidden(batch[:, :-1])
        loss = model.token_nll(hidden, batch[:, 1:]).mean()
        optimizer.zero_grad(set_to_none=True)
        (loss + args.aux_coef * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        step += 1
        loss_sum += loss.item()
        aux_sum += aux.item()
        loss_count += 1

        elapsed = elapsed_before + time.time() - start
        if step % args.log_every == 0:
            entry = {"step": step, "loss": loss_sum / loss_count, "aux": aux_sum / loss_count, "lr": lr,
                     "tokens": step * tokens_per_step, "elapsed": round(elapsed, 1)}
            record(entry)
            print(json.dumps(entry), flush=True)
            loss_sum = aux_sum = 0.0
            loss_count = 0
        if args.bench:
            continue
        if step % args.eval_every == 0:
            record_evaluation()
        if time.time() - last_checkpoint > args.checkpoint_minutes * 60:
            save_atomically(snapshot(elapsed_before + time.time() - start), checkpoint_path)
            last_checkpoint = time.time()

    if args.bench:
        seconds = time.time() - bench_start
        measured = stop_steps - 2
        print(f"bench: {measured / seconds:.3f} steps/s, {measured * tokens_per_step / seconds:.0f} tokens/s", flush=True)
        return
    if step % args.eval_every:
        record_evaluation()
    final = snapshot(elapsed_before + time.time() - start)
    save_atomically(final, checkpoint_path)
    save_atomically({k: final[k] for k in ("model", "config", "args", "step", "elapsed", "own_row_ids")}, os.path.join(args.out, "final.pt"))
    print(f"done: {step} steps in {final['elapsed'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
