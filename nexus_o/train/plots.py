"""Loss curves as PNG: one line per phase, and its validation loss (dashed, dots) where logged."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_losses(histories: dict[str, list[dict]], path: str | Path, title: str = "training loss") -> Path:
    """histories: {phase: Trainer log_history}; phases are laid end to end on the step axis."""
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0
    for phase, history in histories.items():
        train = [(h["step"] + offset, h["loss"]) for h in history if "loss" in h]
        evals = [(h["step"] + offset, h["eval_loss"]) for h in history if "eval_loss" in h]
        if train:
            ax.plot(*zip(*train), label=f"{phase} train")
        if evals:
            ax.plot(*zip(*evals), "o--", label=f"{phase} validation")
        steps = [h["step"] for h in history if "step" in h]
        offset += max(steps, default=0)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
