"""Draws the model card's figures.

  /usr/bin/python3 tools/train/plots.py RUN/log.jsonl EVAL.json docs/demo-model-loss.png docs/demo-model-experts.png

The loss figure shows the training loss (mean of each logged interval), the held-out loss at each evaluation and
the load-balancing loss; the experts figure shows, per layer, each expert's share of the top-2 assignments on the
held-out text (from evaluate.py --out).
"""
from __future__ import annotations

import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def loss_figure(log_path: str, out_path: str) -> None:
    with open(log_path) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    train = [e for e in entries if "loss" in e]
    heldout = [e for e in entries if "heldout_loss" in e]
    tokens_per_step = train[-1]["tokens"] / train[-1]["step"]

    fig, (ax_loss, ax_aux) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax_loss.plot([e["tokens"] / 1e6 for e in train], [e["loss"] for e in train], lw=0.8, alpha=0.8, label="training")
    ax_loss.plot([e["step"] * tokens_per_step / 1e6 for e in heldout], [e["heldout_loss"] for e in heldout], "o-",
                 ms=3, label="held-out (24 chapters)")
    ax_loss.set_ylabel("cross entropy (nats/token)")
    ax_loss.set_ylim(min(e["loss"] for e in train) - 0.2, min(8.0, max(e["loss"] for e in train)))
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    final = heldout[-1]
    ax_loss.set_title(f"kjv-mixtral: held-out loss {final['heldout_loss']:.3f} "
                      f"(perplexity {math.exp(final['heldout_loss']):.2f}) after {final['step']} steps")
    ax_aux.plot([e["tokens"] / 1e6 for e in train], [e["aux"] for e in train], lw=0.8, color="tab:green")
    ax_aux.axhline(2.0, color="gray", ls="--", lw=0.8)
    ax_aux.set_ylabel("load-balancing loss\n(2 = balanced)")
    ax_aux.set_xlabel("training tokens (millions)")
    ax_aux.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


def experts_figure(eval_path: str, out_path: str) -> None:
    with open(eval_path) as f:
        results = json.load(f)
    shares = results["assignment_share"]
    n_layers, n_experts = len(shares), len(shares[0])
    fig, axes = plt.subplots(1, n_layers, figsize=(3 * n_layers, 3.2), sharey=True)
    for layer, ax in enumerate(axes):
        percent = [100 * s for s in shares[layer]]
        ax.bar(range(n_experts), percent, color="tab:blue")
        ax.axhline(100 / n_experts, color="gray", ls="--", lw=0.8, label="uniform")
        ax.axhline(2, color="tab:red", ls=":", lw=0.8, label="2% floor")
        ax.set_title(f"layer {layer}")
        ax.set_xticks(range(n_experts))
        ax.set_xlabel("expert")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("share of top-2 assignments (%)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Expert usage on held-out text ({results['routed_tokens']:,} tokens, 2 experts each)")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    log_path, eval_path, loss_png, experts_png = sys.argv[1:]
    loss_figure(log_path, loss_png)
    experts_figure(eval_path, experts_png)


if __name__ == "__main__":
    main()
