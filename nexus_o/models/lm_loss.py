"""The LM loss of training without full-vocabulary fp32 logits for every token.

transformers' causal-LM loss projects every position onto the whole vocabulary (152k at 7B) and
upcasts those logits to fp32: 4 x 2048 tokens make 5 GB of fp32 logits plus their gradient.
`linear_cross_entropy` gives the same loss from the last hidden states and the LM head weight:
only positions with a target are projected, a chunk of rows at a time, and the gradients of
each chunk are computed right away (as Liger's fused linear cross-entropy does), so no chunk's
logits are kept for the backward pass and nothing is recomputed.

`impl="liger"` uses liger-kernel's Triton kernel where it is installed and the tensors are on
CUDA; otherwise (no package, CPU) it falls back to the chunked torch version.

`LMHead` is the LM head (an `nn.Linear`, same weight) that can also return this loss: computed
inside the head's own forward, it reads a whole weight under FSDP2 and DeepSpeed ZeRO-3, which
gather a module's sharded parameters only while it runs (and again for its backward).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100


class _ChunkedLinearCE(torch.autograd.Function):
    """sum over rows of cross_entropy(hidden @ weight.T, targets); gradients computed in forward."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int):
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, hidden.shape[0], chunk):
            h = hidden[start:start + chunk]
            t = targets[start:start + chunk]
            logits = (h @ weight.T).float()  # [c, V]: the only logits alive at any time
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
            if need_h or need_w:
                grad = torch.softmax(logits, dim=-1)  # d(sum CE)/d logits = softmax - one-hot
                grad[torch.arange(t.shape[0], device=t.device), t] -= 1.0
                grad = grad.to(hidden.dtype)
                if need_h:
                    grad_h[start:start + chunk] = grad @ weight
                if need_w:
                    grad_w += (grad.T @ h).float()
        ctx.save_for_backward(grad_h if need_h else None, grad_w if need_w else None)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        gh = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        gw = (grad_w * grad_out).to(ctx.weight_dtype) if grad_w is not None else None
        return gh, gw, None, None


def _liger_sum(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
    if not hidden.is_cuda:
        return None
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
    except ImportError:
        return None
    return LigerFusedLinearCrossEntropyLoss(reduction="sum")(weight, hidden, targets)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                         num_items_in_batch: int | torch.Tensor | None = None, chunk: int = 1024,
                         impl: str = "chunked") -> torch.Tensor:
    """Causal-LM loss as transformers computes it (labels shifted left by one, -100 ignored).

    hidden [B, L, H]: last hidden states (after the final norm); weight [V, H]: the LM head;
    labels [B, L]. Returns the mean over target tokens, or the sum over `num_items_in_batch`
    when given (what Trainer passes under gradient accumulation). A scalar in fp32.
    """
    shifted = F.pad(labels, (0, 1), value=IGNORE_INDEX)[:, 1:]
    keep = shifted.reshape(-1) != IGNORE_INDEX
    rows = hidden.reshape(-1, hidden.shape[-1])[keep]
    targets = shifted.reshape(-1)[keep].to(rows.device)
    total = _liger_sum(rows, weight, targets) if impl == "liger" else None
    if total is None:
        total = _ChunkedLinearCE.apply(rows, weight, targets, chunk)
    denom = num_items_in_batch if num_items_in_batch is not None else keep.sum().clamp(min=1)
    if torch.is_tensor(denom):
        denom = denom.to(total.device)
    return total.float() / denom


class LMHead(nn.Linear):
    """The LM head: logits as `nn.Linear`, or with `labels` the LM loss without logits.

    forward(hidden [B, L, H]) -> logits [B, L, V]; forward(hidden, labels [B, L], ...) ->
    `linear_cross_entropy(hidden, self.weight, labels, ...)`, a scalar.
    """

    @classmethod
    def wrap(cls, linear: nn.Linear) -> "LMHead":
        """An `LMHead` holding `linear`'s own parameters (so ties and state-dict keys stay)."""
        head = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, device="meta")
        head.weight, head.bias = linear.weight, linear.bias
        # transformers marks initialised modules; unmarked, the outer model's post_init would
        # initialise the head again (other weights, and a shifted seed for the modules after it)
        head._is_hf_initialized = getattr(linear, "_is_hf_initialized", False)
        return head

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor | None = None,
                num_items_in_batch: int | torch.Tensor | None = None, impl: str = "chunked") -> torch.Tensor:
        if labels is None:
            return super().forward(hidden)
        if self.bias is not None:
            raise ValueError("the linear cross-entropy takes an LM head without bias")
        return linear_cross_entropy(hidden, self.weight, labels, num_items_in_batch, impl=impl)
