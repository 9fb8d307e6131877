"""Token files written by prepare_data.mjs and the held-out evaluation windows every evaluator uses.

Held-out perplexity protocol (the same in evaluate.py and eval_llama.mjs): each held-out chapter (BOS ... EOS) is
cut into windows of at most `context_length` tokens that overlap by one token (stride context_length - 1). Each
window is evaluated from an empty context at position 0, and every token after the window's first is predicted
once, so every token of the chapter except its BOS is scored exactly once.
"""
from __future__ import annotations

import numpy as np
import torch

from model import BOS_ID


def load_tokens(path: str) -> torch.Tensor:
    return torch.from_numpy(np.fromfile(path, dtype="<u2").astype(np.int64))


def split_documents(ids: torch.Tensor) -> list[torch.Tensor]:
    starts = (ids == BOS_ID).nonzero().flatten().tolist()
    return [ids[a:b] for a, b in zip(starts, starts[1:] + [len(ids)])]


def evaluation_windows(documents: list[torch.Tensor], context_length: int) -> list[torch.Tensor]:
    windows = []
    for doc in documents:
        start = 0
        while start < len(doc) - 1:
            windows.append(doc[start:start + context_length])
            start += context_length - 1
    return windows
