"""Chat suitability and conversational rewriting of queries (paper §3.2, "for chat tasks").

The paper drops queries unfit for spoken chat (e.g. meta-questions) and has Qwen2-72B rewrite
each kept question in a conversational tone and write the spoken answer. Two rewriters share
one interface, `rewrite(query, answer=None, language=None) -> RewriteResult`:

- `LLMRewriter(backend)`: the paper's path. It sends `SYSTEM_PROMPT` and `USER_TEMPLATE` to any
  `LLMBackend` (an OpenAI-compatible endpoint such as vLLM serving Qwen2-72B, or a local
  transformers model) and parses the JSON object the model returns.
- `RuleBasedRewriter`: deterministic templates for the tiny world and for tests; it drops
  queries asking for code, tables, formulas, long lists or about the assistant itself, rewrites
  the question ("What colour is the square?" -> "Hey, could you tell me what colour the square
  is?", "正方形是什么颜色？" -> "嘿，你能告诉我正方形是什么颜色吗？") and keeps the given answer.

A backend or parse failure raises `RewriteError`, which the caller records as a rejected sample.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from nexus_o.speech.language import check_language, detect_language

Message = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": str}

# The LLM path's prompts. The system prompt fixes the task and the output format; the user
# template carries one query. `{language_name}` is "English" or "Chinese (Mandarin)".
SYSTEM_PROMPT = (
    "You prepare training data for a spoken voice assistant. Every question and answer you "
    "write will be read aloud by a text-to-speech system, so write plain spoken sentences: no "
    "markdown, lists, code, tables, formulas, URLs or emoji. Reply with one JSON object only."
)
USER_TEMPLATE = """Query ({language_name}): {query}
Reference answer (may be empty): {answer}

1. Decide whether the query suits a spoken conversation. It does not if it asks for code,
   tables, formulas or other layout that cannot be read aloud, for a long enumeration, or if it
   is a meta-question about the assistant, its instructions or the conversation itself.
2. If it suits, rewrite the query the way a person would ask it aloud in a relaxed chat, in
   {language_name}, keeping its meaning.
3. Write a short conversational answer in {language_name}, as it would be spoken, using the
   facts of the reference answer when one is given.

Reply with JSON: {{"suitable": true or false, "reason": "why not, if unsuitable",
"question": "the rewritten question", "answer": "the spoken answer"}}"""
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese (Mandarin)"}


class RewriteError(RuntimeError):
    """The rewrite of one query failed (backend error or unusable output); `reason` says why."""

    def __init__(self, reason: str, query: str = ""):
        self.reason = reason
        super().__init__(f"rewrite failed: {reason} (query: {query[:60]!r})")


@dataclass(frozen=True)
class RewriteResult:
    """Outcome for one query: kept with its spoken question/answer, or dropped with a reason."""

    suitable: bool
    question: str
    answer: str | None
    reason: str | None
    language: str


class LLMBackend(Protocol):
    """A chat model: `complete(messages) -> the assistant's reply text`."""

    def complete(self, messages: Sequence[Message]) -> str: ...


class OpenAICompatibleBackend:
    """Chat Completions over HTTP (vLLM, SGLang, TGI, llama.cpp server, OpenAI, ...).

    Args:
        base_url: endpoint root, e.g. "http://localhost:8000/v1" (requests go to
            `{base_url}/chat/completions`).
        model: model name the server expects.
        api_key: sent as a Bearer token when given.
        temperature, max_tokens, timeout: request settings.
        transport: an httpx transport (tests pass `httpx.MockTransport`).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 512,
        timeout: float = 120.0,
        transport=None,
    ):
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def complete(self, messages: Sequence[Message]) -> str:
        """POST the messages; return choices[0].message.content. Raises RewriteError on failure."""
        import httpx

        body = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        try:
            response = self._client.post("/chat/completions", json=body)
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]
        except httpx.HTTPStatusError as err:
            raise RewriteError(f"LLM endpoint returned HTTP {err.response.status_code}") from err
        except httpx.HTTPError as err:
            raise RewriteError(f"LLM endpoint unreachable: {type(err).__name__}: {err}") from err
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise RewriteError(f"LLM endpoint sent a malformed reply: {err!r}") from err


class TransformersBackend:
    """A local transformers causal LM with a chat template (e.g. a Qwen2 instruct folder).

    Args:
        model_dir: folder written by `save_pretrained` (model + tokenizer); never fetched.
        device: torch device. max_new_tokens: reply budget. Decoding is greedy (reproducible).
    """

    def __init__(self, model_dir: str, device: str = "cpu", max_new_tokens: int = 512):
        self.model_dir, self.device, self.max_new_tokens = model_dir, device, max_new_tokens
        self._model = None
        self._tokenizer = None

    def _load(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(self.model_dir, local_files_only=True)
            self._model = model.to(self.device).eval()
        return self._model, self._tokenizer

    def complete(self, messages: Sequence[Message]) -> str:
        """Generate the assistant reply to `messages` with the tokenizer's chat template."""
        import torch

        model, tokenizer = self._load()
        input_ids = tokenizer.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"].to(self.device)
        with torch.inference_mode():
            output = model.generate(input_ids, max_new_tokens=self.max_new_tokens, do_sample=False)
        return tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True)


class LLMRewriter:
    """The paper's rewriter: one LLM call per query with `SYSTEM_PROMPT` / `USER_TEMPLATE`."""

    def __init__(self, backend: LLMBackend):
        self.backend = backend

    def messages(self, query: str, answer: str | None, language: str) -> list[dict[str, str]]:
        """The chat messages sent for one query."""
        user = USER_TEMPLATE.format(language_name=LANGUAGE_NAMES[language], query=query, answer=answer or "")
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

    def rewrite(self, query: str, answer: str | None = None, language: str | None = None) -> RewriteResult:
        """Judge and rewrite `query`. Raises RewriteError when the reply is not the asked JSON."""
        language = check_language(language) if language else detect_language(query)
        reply = self.backend.complete(self.messages(query, answer, language))
        data = _parse_json_object(reply, query)
        if not isinstance(data.get("suitable"), bool):
            raise RewriteError("LLM reply has no boolean 'suitable'", query)
        if not data["suitable"]:
            return RewriteResult(False, query, None, str(data.get("reason") or "unsuitable"), language)
        question, spoken = data.get("question"), data.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise RewriteError("LLM reply has no rewritten 'question'", query)
        if not isinstance(spoken, str) or not spoken.strip():
            raise RewriteError("LLM reply has no 'answer'", query)
        return RewriteResult(True, question.strip(), spoken.strip(), None, language)


def _parse_json_object(reply: str, query: str) -> dict:
    """The first {...} object in `reply` (models often wrap JSON in prose or code fences)."""
    start, end = reply.find("{"), reply.rfind("}")
    if start < 0 or end <= start:
        raise RewriteError("LLM reply holds no JSON object", query)
    try:
        data = json.loads(reply[start : end + 1])
    except json.JSONDecodeError as err:
        raise RewriteError(f"LLM reply is not valid JSON: {err.msg}", query) from err
    if not isinstance(data, dict):
        raise RewriteError("LLM reply is not a JSON object", query)
    return data


# Rule-based path. Each rule names why a query is unfit for spoken chat; the first match wins.
_UNSUITABLE_EN = (
    ("code", (r"```|\b(?:write|implement|debug|fix|refactor)\b.*\b(?:code|function|program|script|class|"
              r"query|regex)\b|\b(?:python|javascript|typescript|java|c\+\+|sql|html|css|bash)\b")),
    ("table", r"\b(?:tables?|spreadsheets?|csv)\b|\bcolumns?\b.*\brows?\b"),
    ("formula", r"\b(?:formulas?|formulae|equations?|integrals?|derivatives?|derive|latex|matrix|prove)\b"),
    ("long_list", r"\b(?:list|enumerate|name)\b.*\b(?:all|every|\d{2,}|twenty|fifty|hundred)\b|\btop \d{2,}\b"),
    ("meta", (r"\bare you (?:an? )?(?:ai|bot|robot|human|chatgpt|language model)\b|\bwho (?:made|created|"
              r"built|trained) you\b|\bwhat (?:model|ai|llm) are you\b|\byour (?:system )?prompt\b|\b(?:ignore|"
              r"forget) (?:all |your |the )?(?:previous |above )?instructions\b|\bthis conversation\b|\b(?:previous"
              r"|last) (?:question|answer|message)\b|\bwhat did i (?:just )?(?:say|ask)\b")),
)  # fmt: skip
_UNSUITABLE_ZH = (
    ("code", r"```|代码|编程|程序|函数|脚本|python|java|sql"),
    ("table", r"表格|列成表"),
    ("formula", r"公式|方程|积分|导数|推导|证明"),
    ("long_list", r"列出|列举|\d{2,}个"),
    (
        "meta",
        r"你是谁|你是什么模型|谁(?:开发|训练|创造|制作)了你|你的(?:系统)?提示|忽略.*指令|上一个问题|刚才我?(?:说|问)",
    ),
)
_UNSUITABLE = {
    "en": [(reason, re.compile(pattern, re.IGNORECASE)) for reason, pattern in _UNSUITABLE_EN],
    "zh": [(reason, re.compile(pattern, re.IGNORECASE)) for reason, pattern in _UNSUITABLE_ZH],
}

_EN_CHATTY = re.compile(
    r"^(?:hey|hi|hello|could you|can you|would you|do you know|i was wondering)\b", re.IGNORECASE
)
_EN_ASKING = re.compile(r"^(?:tell me|give me|show me)\b", re.IGNORECASE)
_EN_IMPERATIVE = re.compile(
    r"^(?:describe|explain|name|count|find|say|list|compare|summari[sz]e)\b", re.IGNORECASE
)
_EN_WH_BE = re.compile(
    r"^(?P<wh>(?:what|which|whose|how many|how much|how)(?: \w+)?|who|where|when|why) "
    r"(?P<verb>is|are|was|were) (?P<rest>.+)$",
    re.IGNORECASE,
)
_EN_WH = re.compile(r"^(?:what|which|whose|who|where|when|why|how)\b", re.IGNORECASE)
_EN_YES_NO = re.compile(
    r"^(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had)\b", re.IGNORECASE
)
# A subject that follows the verb in a wh-question ("what colour is THE square") moves before it
# in the embedded question ("... what colour the square is"); "which shape is red" stays as is.
_EN_SUBJECT_START = re.compile(
    r"^(?:(?:the|a|an|this|that|these|those|my|your|his|her|its|our|their|it|he|she|they|we|you|i|"
    r"there)\b|[A-Z])",
)
_ZH_CHATTY = re.compile(r"^(?:你好|嘿|请问|你能|你可以|能不能|可以)")
_ZH_WH = re.compile(r"什么|哪|谁|几|多少|怎么|为什么|如何")
_ZH_IMPERATIVE = re.compile(r"^(?:告诉我|描述|说明|解释|介绍|说说|讲讲|数一数|比较)")


class RuleBasedRewriter:
    """Deterministic suitability rules and conversational templates, English and Chinese.

    The answer is not rewritten: in the tiny world it comes from the world itself and is already
    a plain spoken sentence, so it is passed through unchanged.
    """

    def rewrite(self, query: str, answer: str | None = None, language: str | None = None) -> RewriteResult:
        """Drop `query` if a rule in `_UNSUITABLE_*` matches, else rewrite it conversationally."""
        query = " ".join(query.split())
        if not query:
            raise RewriteError("empty query", query)
        language = check_language(language) if language else detect_language(query)
        for reason, pattern in _UNSUITABLE[language]:
            if pattern.search(query):
                return RewriteResult(False, query, None, reason, language)
        question = _rewrite_en(query) if language == "en" else _rewrite_zh(query)
        return RewriteResult(True, question, answer, None, language)


def _lower_first(text: str) -> str:
    """Lower-case the first letter unless it starts "I" or an acronym ("NASA")."""
    first = text.split(" ", 1)[0]
    if first == "I" or (len(first) > 1 and first[1].isupper()):
        return text
    return text[:1].lower() + text[1:]


def _rewrite_en(query: str) -> str:
    core = query.rstrip("?.! ")
    if _EN_CHATTY.match(core):
        return core + "?"
    if _EN_ASKING.match(core):
        return f"Could you {_lower_first(core)}?"
    if _EN_IMPERATIVE.match(core):
        return f"Could you {_lower_first(core)} for me?"
    match = _EN_WH_BE.match(core)
    if match:
        wh, verb, rest = match.group("wh").lower(), match.group("verb").lower(), match.group("rest")
        embedded = f"{wh} {rest} {verb}" if _EN_SUBJECT_START.match(rest) else f"{wh} {verb} {rest}"
        return f"Hey, could you tell me {embedded}?"
    if _EN_WH.match(core):
        return f"Hey, I was wondering, {_lower_first(core)}?"
    if _EN_YES_NO.match(core):
        return f"Hey, quick question: {_lower_first(core)}?"
    return f"Could you tell me about {_lower_first(core)}?"


def _rewrite_zh(query: str) -> str:
    core = query.rstrip("？?。！!. ")
    if _ZH_CHATTY.match(core):
        return core + "？"
    core = core.removeprefix("请")
    if core.endswith(("吗", "呢", "吧")):
        return f"我想问一下，{core}？"
    if _ZH_IMPERATIVE.match(core):
        return f"你能{core}吗？"
    if _ZH_WH.search(core):
        return f"嘿，你能告诉我{core}吗？"
    return f"你能跟我说说{core}吗？"
