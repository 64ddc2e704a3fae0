"""VLMEvalKit adapter: a NEXUS-O model behind VLMEvalKit's model interface.

VLMEvalKit (`run.py --data MMMU_DEV_VAL --model NAME`) builds a model from its `supported_VLM`
registry and calls, per benchmark line:

- `set_dump_image(fn)`: the dataset's function that writes a line's images to disk;
- `use_custom_prompt(dataset) -> bool`, and when True `build_prompt(line, dataset) -> message`;
- `generate(message, dataset)` -> str, which checks the message and calls `generate_inner`.

A message is VLMEvalKit's interleaved list `[{"type": "image", "value": path}, {"type": "text",
"value": "..."}]` (also accepted: a string, a list of strings where file paths become media, or a
single dict). Types: text, image, video, and audio (our model hears too). The class does not
inherit VLMEvalKit's `BaseModel`, so it imports without VLMEvalKit; it implements the methods
VLMEvalKit's inference loop calls. `register_vlmevalkit` adds it to VLMEvalKit's registry;
`write_vlmevalkit_tsv` turns a local vqa benchmark into a VLMEvalKit custom dataset file.

Custom prompts follow the convention of VLMEvalKit's Qwen2-VL family (the backbone we extend):
multiple-choice lines list their options and ask for the letter; yes/no lines ask for yes or no;
short-answer VQA lines ask for a word or phrase. MMVet and MME keep the dataset's own prompt.
"""

from __future__ import annotations

import math
import mimetypes
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

MEDIA_TYPES = ("image", "video", "audio")
MCQ_PROMPT = "Answer with the option's letter from the given choices directly."
YES_NO_PROMPT = "Please answer yes or no."
SHORT_ANSWER_PROMPT = "Answer the question using a single word or phrase."
OWN_PROMPT_DATASETS = {"MMVet", "MME"}  # scored by a judge / their own template: keep theirs


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _vlmeval_dataset_type(dataset: str) -> str | None:
    """VLMEvalKit's own dataset type ("MCQ", "Y/N", "VQA", ...), None without VLMEvalKit."""
    try:
        from vlmeval.dataset import DATASET_TYPE
    except ImportError:
        return None
    return DATASET_TYPE(dataset, default=None)


class NexusOVLMEval:
    """VLMEvalKit model class over a NEXUS-O model.

    model_path: checkpoint folder or preset name, loaded with `load_model`; or pass an already
    loaded `model` and `processor`. max_new_tokens: reply limit. dataset_type: function from a
    dataset name to its type; defaults to VLMEvalKit's `DATASET_TYPE` when installed.
    """

    INTERLEAVE = True  # images, videos, audio and text in any order
    VIDEO_LLM = True  # VLMEvalKit hands video benchmarks over as video files, not sampled frames
    INSTALL_REQ = False
    allowed_types: ClassVar[list[str]] = ["text", *MEDIA_TYPES]
    is_api = False

    def __init__(self, model_path: str | Path = "tiny", *, model=None, processor=None, max_new_tokens: int = 512,
                 use_custom_prompt: bool = True, dataset_type: Callable[[str], str | None] | None = None):
        if (model is None) != (processor is None):
            raise ValueError("pass both model and processor, or neither (then model_path is loaded)")
        if model is None:
            from nexus_o.bundle.loading import load_model

            omni = load_model(model_path)
            model, processor = omni.model, omni.processor
        self.model, self.processor = model.eval(), processor
        self.max_new_tokens = max_new_tokens
        self._use_custom_prompt = use_custom_prompt
        self.dataset_type = dataset_type or _vlmeval_dataset_type
        self.dump_image_func: Callable | None = None

    # -- what VLMEvalKit's inference loop calls -----------------------------------------------
    def set_dump_image(self, dump_image_func: Callable) -> None:
        self.dump_image_func = dump_image_func

    def dump_image(self, line, dataset: str | None = None) -> list[str]:
        """The line's image paths, written by the dataset's dump function."""
        if self.dump_image_func is None:
            raise ValueError("no dump_image function set: VLMEvalKit calls set_dump_image(dataset.dump_image) "
                             "before build_prompt")
        paths = self.dump_image_func(line)
        return [paths] if isinstance(paths, str) else list(paths)

    def use_custom_prompt(self, dataset: str | None) -> bool:
        """True where `build_prompt` words the question (MCQ, yes/no, short-answer VQA)."""
        if not self._use_custom_prompt or dataset is None or dataset in OWN_PROMPT_DATASETS:
            return False
        return self.dataset_type(dataset) in ("MCQ", "Y/N", "VQA")

    def build_prompt(self, line, dataset: str | None = None) -> list[dict]:
        """A message for one benchmark line (a dict or pandas row with question / A..Z / hint)."""
        kind = self.dataset_type(dataset) if dataset is not None else None
        question = str(line["question"])
        prompt = f"Hint: {line['hint']}\n" if "hint" in line and not _missing(line["hint"]) else ""
        prompt += f"Question: {question}\n" if kind == "MCQ" else question
        if kind == "MCQ":
            options = [(c, line[c]) for c in string.ascii_uppercase if c in line and not _missing(line[c])]
            prompt += "Options:\n" + "".join(f"{c}. {text}\n" for c, text in options) + MCQ_PROMPT
        elif kind == "Y/N":
            prompt += " " + YES_NO_PROMPT
        elif kind == "VQA":
            prompt += "\n" + SHORT_ANSWER_PROMPT
        return [{"type": "image", "value": p} for p in self.dump_image(line, dataset)] + \
               [{"type": "text", "value": prompt.strip()}]

    def generate(self, message, dataset: str | None = None) -> str:
        """Normalise `message` to VLMEvalKit's list of {"type", "value"} dicts, then `generate_inner`."""
        return self.generate_inner(normalize_message(message, self.allowed_types), dataset)

    def generate_inner(self, message: list[dict], dataset: str | None = None) -> str:
        """Reply (greedy) to an interleaved message; media and text keep their order."""
        from nexus_o.inference.text import generate_text

        conversation = {"messages": [{"role": "user", "content": message_parts(message)}]}
        return generate_text(self.model, self.processor, conversation, self.max_new_tokens)[0]


def normalize_message(message, allowed_types=("text", *MEDIA_TYPES)) -> list[dict]:
    """str | dict | list[str] | list[dict] -> [{"type", "value"}]; paths in a string list become media."""
    if isinstance(message, (str, dict)):
        message = [message]
    if not isinstance(message, list) or not message:
        raise ValueError(f"a message is a non-empty list of {{'type', 'value'}} dicts or strings, got {message!r:.80}")
    out = []
    for k, item in enumerate(message):
        if isinstance(item, str):
            item = {"type": _media_type(item), "value": item}
        if not isinstance(item, dict) or not {"type", "value"} <= set(item):
            raise ValueError(f"message item {k} must be a dict with 'type' and 'value', got {item!r:.80}")
        if item["type"] not in allowed_types:
            raise ValueError(f"message item {k} has type {item['type']!r}; this model takes {list(allowed_types)}")
        out.append(item)
    return out


def _media_type(text: str) -> str:
    """'image' / 'video' / 'audio' for an existing media file path, else 'text'."""
    if text.startswith(("http://", "https://")) and (mimetypes.guess_type(text)[0] or "").split("/")[0] in MEDIA_TYPES:
        raise ValueError(f"remote media {text[:80]!r} is not fetched at run time; download it and pass the path")
    if len(text) < 4096 and Path(text).suffix and Path(text).is_file():
        kind = (mimetypes.guess_type(text)[0] or "").split("/")[0]
        if kind in MEDIA_TYPES:
            return kind
    return "text"


def message_parts(message: list[dict]) -> list[dict]:
    """VLMEvalKit items -> our chat content parts ({"type": "image", "image": path}, {"type": "text", ...})."""
    return [{"type": "text", "text": str(item["value"])} if item["type"] == "text"
            else {"type": item["type"], item["type"]: item["value"]} for item in message]


TSV_COLUMNS = ("index", "image", "question", "answer")


def write_vlmevalkit_tsv(manifest: str | Path, tsv: str | Path, *, limit: int | None = None,
                         skip_unsupported: bool = False) -> tuple[int, int]:
    """A `nexus-o eval` vqa manifest -> a VLMEvalKit custom VQA dataset file (`$LMUData/<NAME>.tsv`).

    VLMEvalKit reads a dataset it does not know from `LMUData/<NAME>.tsv`, tab-separated, with
    columns index, image (the image file, base64), question, answer. A line must hold exactly one
    image and no audio or video (VLMEvalKit's image datasets carry nothing else); other lines are
    errors naming file:line, or skipped with `skip_unsupported`. The answer is the first acceptable
    one. Returns (lines written, lines skipped).
    """
    import base64
    import csv

    from nexus_o.eval.metrics import parse_answer_line
    from nexus_o.eval.runner import load_items
    from nexus_o.eval.tasks import EvalError, get_task

    rows, skipped = [], 0
    for item in load_items(get_task("vqa"), Path(manifest), limit):
        media = {k: item.prompt[k] for k in ("images", "videos", "audios") if item.prompt[k]}
        if list(media) != ["images"] or len(media["images"]) != 1:
            if skip_unsupported:
                skipped += 1
                continue
            raise EvalError(f"{manifest}:{item.line}: VLMEvalKit's image datasets take one image and text; this "
                            f"line has {', '.join(f'{len(v)} {k}' for k, v in media.items()) or 'no media'}")
        question = "".join(str(m["content"]) for m in item.prompt["messages"] if m["role"] == "user")
        rows.append({"index": len(rows), "image": base64.b64encode(Path(media["images"][0]).read_bytes()).decode(),
                     "question": question.replace("<image>", "").strip(),
                     "answer": parse_answer_line(item.reference, f"{manifest}:{item.line}")[0]})
    Path(tsv).parent.mkdir(parents=True, exist_ok=True)
    with open(tsv, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TSV_COLUMNS, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows), skipped


def register_vlmevalkit(name: str = "NEXUS-O", registry: dict | None = None, **kwargs) -> dict:
    """Add `name` -> NexusOVLMEval(**kwargs) (e.g. model_path=DIR) to VLMEvalKit's `supported_VLM`.

    registry: the dict to add to (default: `vlmeval.config.supported_VLM`, imported here).
    Returns the registry. Raises ImportError naming the package when VLMEvalKit is missing.
    """
    from functools import partial

    if registry is None:
        try:
            from vlmeval.config import supported_VLM as registry
        except ImportError as err:
            raise ImportError("VLMEvalKit is not installed: git clone https://github.com/open-compass/VLMEvalKit "
                              "&& pip install -e VLMEvalKit") from err
    registry[name] = partial(NexusOVLMEval, **kwargs)
    return registry
