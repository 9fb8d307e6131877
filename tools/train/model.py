"""A tiny Mixtral computed exactly as llama.cpp's llama architecture computes Mixtral (REFERENCE.md "Forward pass").

RMSNorm (eps 1e-5) -> GQA attention with RoPE in GGUF's "normal" adjacent-pair style -> residual -> RMSNorm ->
sparse MoE (softmax over all experts, top-k, renormalise; SwiGLU experts) -> residual. No biases. The output head is
tied to the token embedding (the GGUF then omits output.weight and llama.cpp reuses token_embd).

Tokens that never occur in the training text share one embedding row. Their logits are then all equal, so the
exact 32000-way softmax folds them into one class whose logit is raised by log(count). The loss is the true
full-vocabulary loss at a quarter of the cost, and export writes the shared row once per such token.

Weights are kept in the shapes the GGUF stores (PyTorch [out, in] = ggml ne [in, out]; experts [E, out, in] =
ne [in, out, E]), so export is a reshape-free copy.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

BOS_ID = 1
EOS_ID = 2

# Tensors above 32 MB are mmapped by glibc and page-faulted afresh on every step, which is very slow on this VM;
# work is cut into chunks whose big temporaries stay well below that.
CHUNK_BYTES = 16 << 20


@dataclass
class ModelConfig:
    vocab_size: int = 32000
    dim: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    ffn_dim: int = 160  # hidden size of one expert
    n_experts: int = 8
    n_experts_used: int = 2
    context_length: int = 512
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x / sqrt(mean(x^2) + eps) * w   (REFERENCE.md "RMSNorm")
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(config: ModelConfig, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (length, head_dim/2): pair i at position p turns by p * base^(-2i/head_dim)."""
    half = config.head_dim // 2
    inv_freq = config.rope_base ** (-torch.arange(half, dtype=torch.float64) * 2.0 / config.head_dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, T, H, hd): rotates adjacent pairs (x[2i], x[2i+1]) — GGUF "normal" style, not NEOX."""
    pairs = x.unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.n_kv_heads, config.head_dim
        self.wq = nn.Parameter(torch.empty(config.n_heads * config.head_dim, config.dim))
        self.wk = nn.Parameter(torch.empty(config.n_kv_heads * config.head_dim, config.dim))
        self.wv = nn.Parameter(torch.empty(config.n_kv_heads * config.head_dim, config.dim))
        self.wo = nn.Parameter(torch.empty(config.dim, config.n_heads * config.head_dim))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, causal_mask: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q = F.linear(x, self.wq).view(batch, length, self.n_heads, self.head_dim)
        k = F.linear(x, self.wk).view(batch, length, self.n_kv_heads, self.head_dim)
        v = F.linear(x, self.wv).view(batch, length, self.n_kv_heads, self.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        q = q.transpose(1, 2) * (1.0 / math.sqrt(self.head_dim))
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        # GQA: query head h reads kv head h // (n_heads / n_kv_heads)
        group = self.n_heads // self.n_kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        rows = max(1, CHUNK_BYTES // (4 * self.n_heads * length * length))
        outs = []
        for i in range(0, batch, rows):
            scores = q[i:i + rows] @ k[i:i + rows].transpose(-1, -2) + causal_mask  # (b, H, T, T)
            outs.append(torch.softmax(scores, dim=-1) @ v[i:i + rows])  # (b, H, T, hd)
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        return F.linear(out.transpose(1, 2).reshape(batch, length, -1), self.wo)


class SparseMoE(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.n_experts, self.n_used = config.n_experts, config.n_experts_used
        self.router = nn.Parameter(torch.empty(config.n_experts, config.dim))  # ffn_gate_inp
        self.w_gate = nn.Parameter(torch.empty(config.n_experts, config.ffn_dim, config.dim))
        self.w_up = nn.Parameter(torch.empty(config.n_experts, config.ffn_dim, config.dim))
        self.w_down = nn.Parameter(torch.empty(config.n_experts, config.dim, config.ffn_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, dim) -> out (N, dim), aux loss, chosen experts (N, k), their weights (N, k)."""
        probs = torch.softmax(F.linear(x, self.router).float(), dim=-1)  # over all experts
        top_weights, top_experts = probs.topk(self.n_used, dim=-1)
        top_weights = top_weights / top_weights.sum(-1, keepdim=True)

        out = torch.zeros_like(x)
        gates, ups, downs = self.w_gate.unbind(0), self.w_up.unbind(0), self.w_down.unbind(0)
        for expert in range(self.n_experts):
            token_index, slot = (top_experts == expert).nonzero(as_tuple=True)
            if token_index.numel() == 0:
                continue
            xe = x[token_index]
            hidden = F.silu(F.linear(xe, gates[expert])) * F.linear(xe, ups[expert])  # SwiGLU
            ye = F.linear(hidden, downs[expert]) * top_weights[token_index, slot, None]
            out = out.index_add(0, token_index, ye)

        # Mixtral / Switch load balancing: E * sum_e (fraction of assignments to e) * (mean router prob of e)
        assignments = F.one_hot(top_experts, self.n_experts).sum(1).float().mean(0)  # sums to k
        aux = self.n_experts * (assignments * probs.mean(0)).sum()
        return out, aux, top_experts, top_weights


class Block(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(config.dim, config.norm_eps)
        self.attn = Attention(config)
        self.ffn_norm = RMSNorm(config.dim, config.norm_eps)
        self.moe = SparseMoE(config)

    def forward(self, x, cos, sin, causal_mask):
        h = x + self.attn(self.attn_norm(x), cos, sin, causal_mask)
        moe_out, aux, experts, weights = self.moe(self.ffn_norm(h).flatten(0, 1))
        return h + moe_out.view_as(h), aux, experts, weights


class Mixtral(nn.Module):
    def __init__(self, config: ModelConfig, own_row_ids: torch.Tensor):
        """own_row_ids: the token ids with an embedding row of their own; every other token shares one row."""
        super().__init__()
        self.config = config
        own_row_ids = torch.as_tensor(own_row_ids, dtype=torch.long).unique()
        row_of_token = torch.full((config.vocab_size,), len(own_row_ids), dtype=torch.long)
        row_of_token[own_row_ids] = torch.arange(len(own_row_ids))
        self.register_buffer("own_row_ids", own_row_ids)
        self.register_buffer("row_of_token", row_of_token)
        self.shared_row = len(own_row_ids)
        shared_count = config.vocab_size - len(own_row_ids)
        self.log_shared_count = math.log(shared_count) if shared_count else float("-inf")
        # rows of token_embd (tied output): one per own-row token, then the shared row
        self.embedding_rows = nn.Parameter(torch.empty(len(own_row_ids) + 1, config.dim))
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        cos, sin = rope_tables(config, config.context_length)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        residual_scale = 1.0 / math.sqrt(2 * self.config.n_layers)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif name.endswith(("wo", "w_down")):
                nn.init.normal_(p, std=0.02 * residual_scale)
            else:
                nn.init.normal_(p, std=0.02)

    def token_embedding(self) -> torch.Tensor:
        """The full (vocab_size, dim) token_embd matrix as the GGUF stores it."""
        return self.embedding_rows[self.row_of_token]

    def hidden(self, ids: torch.Tensor, collect_routing: bool = False):
        """ids (B, T) -> final normed hidden states (B, T, dim), mean aux loss over layers, per-layer routing."""
        length = ids.shape[1]
        if length > self.config.context_length:
            raise ValueError(f"sequence of {length} tokens exceeds context_length {self.config.context_length}")
        cos, sin = self.rope_cos[:length], self.rope_sin[:length]
        causal_mask = torch.full((length, length), float("-inf")).triu(1)
        x = self.embedding_rows[self.row_of_token[ids]]
        aux_total = x.new_zeros(())
        routing = []
        for layer in self.layers:
            x, aux, experts, weights = layer(x, cos, sin, causal_mask)
            aux_total = aux_total + aux
            if collect_routing:
                routing.append((experts.view(*ids.shape, -1), weights.view(*ids.shape, -1)))
        return self.norm(x), aux_total / len(self.layers), routing

    def token_nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Exact full-vocabulary -log p(target) per position (B, T); targets of -100 give 0."""
        flat_hidden, flat_targets = hidden.flatten(0, -2), targets.flatten()
        rows = max(1, CHUNK_BYTES // (4 * self.embedding_rows.shape[0]))
        pieces = []
        for i in range(0, len(flat_targets), rows):
            logits = F.linear(flat_hidden[i:i + rows], self.embedding_rows)
            # the shared class stands for vocab_size - len(own rows) tokens with equal logits
            logits = torch.cat((logits[:, :-1], logits[:, -1:] + self.log_shared_count), dim=1)
            target = flat_targets[i:i + rows]
            ignored = target == -100
            target_row = self.row_of_token[target.clamp(min=0)]
            nll = F.cross_entropy(logits, target_row, reduction="none")
            nll = torch.where(target_row == self.shared_row, nll + self.log_shared_count, nll)
            pieces.append(nll.masked_fill(ignored, 0.0))
        return torch.cat(pieces).view_as(targets)

    def full_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., dim) -> (..., vocab_size) logits, as llama.cpp computes them."""
        return F.linear(hidden, self.token_embedding())


def parameter_count(model: Mixtral) -> int:
    return sum(p.numel() for p in model.parameters())
