"""`nexus-o chat`: talk to a model in the terminal, one turn or an interactive session.

Interactive commands: `/image PATH`, `/audio PATH`, `/video PATH` attach a file to the next
message, `/reset` forgets the conversation, `/exit` (or end of input) quits. Replies stream as
they are generated; with `speak` set, each spoken reply is written to that WAV file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np
from nexus_o.serve.server import load_for_serving

MEDIA_COMMANDS = ("image", "audio", "video")


def user_message(text: str | None = None, images: list[Path] = (), audios: list[Path] = (),
                 videos: list[Path] = ()) -> dict:
    """A user message with content parts for `text` and the media files (which must exist)."""
    parts = []
    for kind, paths in (("image", images), ("audio", audios), ("video", videos)):
        for path in paths:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{kind} file not found: {path}")
            parts.append({"type": kind, kind: str(Path(path).resolve())})
    if text:
        parts.append({"type": "text", "text": text})
    if not parts:
        raise ValueError("a message needs text or at least one media file")
    return {"role": "user", "content": parts}


def reply_once(omni, messages: list[dict], speak: Path | None, write: Callable[[str], None]) -> str:
    """Stream one reply to `write`; with `speak`, write its audio there. Returns the reply text."""
    modalities = ["text", "audio"] if speak is not None else ["text"]
    texts, waves, rate = [], [], None
    for chunk in omni.chat(messages, modalities=modalities, stream=True):
        if chunk.text is not None:
            texts.append(chunk.text)
            write(chunk.text)
        elif chunk.audio is not None:
            waves.append(chunk.audio)
            rate = chunk.sample_rate
    write("\n")
    if speak is not None:
        import soundfile as sf

        speak.parent.mkdir(parents=True, exist_ok=True)
        sf.write(speak, np.concatenate(waves) if waves else np.zeros(0, np.float32), rate or 24_000)
        write(f"[spoken reply written to {speak}]\n")
    return "".join(texts)


def _print(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def interactive(omni, speak: Path | None = None, stdin: TextIO = sys.stdin,
                write: Callable[[str], None] = _print) -> None:
    """A prompt loop on `stdin`; the conversation history is kept until /reset."""
    messages: list[dict] = []
    media: dict[str, list[Path]] = {kind: [] for kind in MEDIA_COMMANDS}
    write("nexus-o chat: /image PATH, /audio PATH, /video PATH attach files; /reset; /exit\n")
    while True:
        write("you> ")
        line = stdin.readline()
        if not line:
            write("\n")
            return
        line = line.strip()
        command, _, argument = line.partition(" ")
        if command == "/exit":
            return
        if command == "/reset":
            messages.clear()
            write("[conversation cleared]\n")
            continue
        if command.lstrip("/") in MEDIA_COMMANDS and command.startswith("/"):
            path = Path(argument.strip()).expanduser()
            if not path.is_file():
                write(f"[no such file: {path}]\n")
                continue
            media[command[1:]].append(path)
            write(f"[{command[1:]} attached: {path}]\n")
            continue
        if not line and not any(media.values()):
            continue
        messages.append(user_message(line, media["image"], media["audio"], media["video"]))
        media = {kind: [] for kind in MEDIA_COMMANDS}
        write("model> ")
        try:
            messages.append({"role": "assistant", "content": reply_once(omni, messages, speak, write)})
        except ValueError as err:  # bad media and the like: report, forget the turn, go on
            messages.pop()
            write(f"[error: {err}]\n")


def run_chat(model_ref: str | Path, text: str | None = None, images: list[Path] = (), audios: list[Path] = (),
             videos: list[Path] = (), speak: Path | None = None, stdin: TextIO = sys.stdin,
             write: Callable[[str], None] = _print) -> str | None:
    """One turn when text or media are given (returns the reply text), else an interactive session."""
    omni = load_for_serving(model_ref)
    if speak is not None and not omni.can_speak:
        raise ValueError(f"--speak: the model {model_ref} has no speech output (no speech decoder or codec)")
    if text or images or audios or videos:
        return reply_once(omni, [user_message(text, images, audios, videos)], speak, write)
    interactive(omni, speak, stdin, write)
    return None
