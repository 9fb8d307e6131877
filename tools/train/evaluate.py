"""Held-out loss, expert usage and a greedy sample, from a checkpoint or from the exported GGUF itself.

  /usr/bin/python3 tools/train/evaluate.py --checkpoint RUN/final.pt [--quantized] [--usage OUT.json]
  /usr/bin/python3 tools/train/evaluate.py --gguf models/kjv-mixtral.gguf --vocab .cache/kjv/vocab.json ...

--quantized evaluates the checkpoint with every weight rounded through the GGUF types (export_gguf.py's
quantizers, the same --embedding-type/--attention-type/--expert-type flags), which is how size candidates are
compared. --gguf reads the file back (dequantized) and evaluates exactly what llama.cpp loads. Perplexity follows
corpus.py's protocol. Expert usage counts the top-k assignments per expert on the held-out windows (each token
makes k of them) and the routing weight each expert receives (each token hands out a total of 1).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_gguf  # noqa: E402
from corpus import evaluation_windows, load_tokens, split_documents  # noqa: E402
from model import BOS_ID, EOS_ID, Mixtral, ModelConfig  # noqa: E402
from runtime import configure_cpu  # noqa: E402


def model_from_checkpoint(path: str) -> Mixtral:
    checkpoint = torch.load(path)
    model = Mixtral(ModelConfig(**checkpoint["config"]), own_row_ids=checkpoint["own_row_ids"])
    model.load_state_dict(checkpoint["model"])
    return model


def quantize_in_place(model: Mixtral, types: dict[str, int]) -> None:
    """Rounds every weight to what the GGUF stores; norms and the router are F32 in the file, so stay exact."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "embedding_rows":
                kind = "embedding"
            elif ".attn.w" in name:
                kind = "attention"
            elif ".moe.w_" in name:
                kind = "experts"
            else:
                continue
            p.copy_(torch.from_numpy(export_gguf.round_trip(p.numpy(), types[kind])))


def model_from_gguf(path: str) -> Mixtral:
    metadata, tensors = export_gguf.read_gguf(path)

    def key(name: str) -> int:
        return int(metadata[f"llama.{name}"])

    config = ModelConfig(vocab_size=key("vocab_size"), dim=key("embedding_length"), n_layers=key("block_count"),
                         n_heads=key("attention.head_count"), n_kv_heads=key("attention.head_count_kv"),
                         ffn_dim=key("feed_forward_length"), n_experts=key("expert_count"),
                         n_experts_used=key("expert_used_count"), context_length=key("context_length"),
                         rope_base=float(metadata["llama.rope.freq_base"]),
                         norm_eps=float(metadata["llama.attention.layer_norm_rms_epsilon"]))
    model = Mixtral(config, own_row_ids=torch.arange(config.vocab_size))  # every token its own row

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(tensors[name][2]))

    state = dict(model.state_dict())
    token_embd = tensor("token_embd.weight")
    state["embedding_rows"] = torch.cat((token_embd, torch.zeros(1, config.dim)))  # the unused shared row
    state["norm.weight"] = tensor("output_norm.weight")
    names = {"attn_norm.weight": "attn_norm.weight", "attn.wq": "attn_q.weight", "attn.wk": "attn_k.weight",
             "attn.wv": "attn_v.weight", "attn.wo": "attn_output.weight", "ffn_norm.weight": "ffn_norm.weight",
             "moe.router": "ffn_gate_inp.weight", "moe.w_gate": "ffn_gate_exps.weight",
             "moe.w_up": "ffn_up_exps.weight", "moe.w_down": "ffn_down_exps.weight"}
    for layer in range(config.n_layers):
        for ours, theirs in names.items():
            state[f"layers.{layer}.{ours}"] = tensor(f"blk.{layer}.{theirs}")
    model.load_state_dict(state)
    return model


@torch.no_grad()
def heldout_statistics(model: Mixtral, windows: list[torch.Tensor], batch_size: int = 8) -> dict:
    """Mean NLL over the windows, and per layer: assignments and routing weight per expert."""
    model.eval()
    config = model.config
    assignments = torch.zeros(config.n_layers, config.n_experts, dtype=torch.float64)
    weight_mass = torch.zeros(config.n_layers, config.n_experts, dtype=torch.float64)
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        chunk = windows[i:i + batch_size]
        longest = max(len(w) for w in chunk)
        ids = torch.zeros(len(chunk), longest, dtype=torch.long)
        targets = torch.full((len(chunk), longest), -100, dtype=torch.long)
        valid = torch.zeros(len(chunk), longest, dtype=torch.bool)
        for row, window in enumerate(chunk):
            ids[row, :len(window)] = window
            targets[row, :len(window) - 1] = window[1:]
            valid[row, :len(window)] = True
        hidden, _, routing = model.hidden(ids, collect_routing=True)
        total += model.token_nll(hidden, targets).sum().item()
        count += int((targets != -100).sum())
        for layer, (experts, weights) in enumerate(routing):
            experts, weights = experts[valid], weights[valid].double()  # (tokens, k)
            assignments[layer] += torch.bincount(experts.flatten(), minlength=config.n_experts).double()
            weight_mass[layer].index_add_(0, experts.flatten(), weights.flatten())
    loss = total / count
    return {
        "heldout_loss": loss, "heldout_ppl": math.exp(loss), "scored_tokens": count,
        "assignment_share": (assignments / assignments.sum(1, keepdim=True)).tolist(),
        "weight_share": (weight_mass / weight_mass.sum(1, keepdim=True)).tolist(),
        "routed_tokens": int(assignments[0].sum().item()) // config.n_experts_used,
    }


def decode(ids: list[int], tokens: list[str]) -> str:
    """SentencePiece decode: byte tokens to bytes, U+2581 to space, control tokens dropped, one leading space off."""
    out = bytearray()
    for token_id in ids:
        piece = tokens[token_id]
        if token_id in (0, BOS_ID, EOS_ID):
            continue
        if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
            out.append(int(piece[3:5], 16))
        else:
            out += piece.replace("\u2581", " ").encode("utf-8")
    text = out.decode("utf-8", errors="replace")
    return text[1:] if text.startswith(" ") else text


@torch.no_grad()
def greedy(model: Mixtral, prompt_ids: list[int], new_tokens: int) -> list[int]:
    model.eval()
    ids = list(prompt_ids)
    for _ in range(new_tokens):
        if len(ids) >= model.config.context_length:
            break
        hidden, _, _ = model.hidden(torch.tensor([ids]))
        next_id = int(model.full_logits(hidden[0, -1]).argmax())
        ids.append(next_id)
        if next_id == EOS_ID:
            break
    return ids[len(prompt_ids):]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint")
    source.add_argument("--gguf")
    parser.add_argument("--quantized", action="store_true", help="round the checkpoint's weights to the GGUF types")
    export_gguf.add_type_arguments(parser)
    parser.add_argument("--data", default=".cache/kjv")
    parser.add_argument("--vocab", default=".cache/kjv/vocab.json")
    parser.add_argument("--prompt-ids", default="1,560,272,5398", help='BOS + "In the beginning"')
    parser.add_argument("--new-tokens", type=int, default=0, help="greedy tokens to generate (0: none)")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configure_cpu(args.threads)

    if args.gguf:
        model = model_from_gguf(args.gguf)
    else:
        model = model_from_checkpoint(args.checkpoint)
        if args.quantized:
            quantize_in_place(model, export_gguf.parse_types(args))
    windows = evaluation_windows(split_documents(load_tokens(os.path.join(args.data, "heldout.u16"))),
                                 model.config.context_length)
    results = {"source": args.gguf or args.checkpoint, "quantized": bool(args.gguf or args.quantized)}
    results.update(heldout_statistics(model, windows))
    print(f"held-out loss {results['heldout_loss']:.4f} nats/token, perplexity {results['heldout_ppl']:.3f} "
          f"over {results['scored_tokens']} tokens")
    for layer, shares in enumerate(results["assignment_share"]):
        print(f"layer {layer} assignment share %: " + " ".join(f"{100 * s:5.1f}" for s in shares))
    if args.new_tokens:
        with open(args.vocab) as f:
            tokens = json.load(f)["tokens"]
        prompt = [int(t) for t in args.prompt_ids.split(",")]
        generated = greedy(model, prompt, args.new_tokens)
        results["greedy"] = {"prompt_ids": prompt, "ids": generated, "text": decode(prompt + generated, tokens)}
        print("greedy:", results["greedy"]["text"])
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
