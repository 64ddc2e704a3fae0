"""The VLMEvalKit and lmms-eval adapters on the tiny preset, fed messages shaped like each harness's."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from nexus_o.eval.harness import lmms_eval as lmms_adapter
from nexus_o.eval.harness.lmms_eval import (
    NexusOLmmsModel,
    lmms_class,
    register_lmms_eval,
)
from nexus_o.eval.harness.vlmevalkit import NexusOVLMEval, register_vlmevalkit
from nexus_o.inference.text import generate_text


@pytest.fixture
def png(tmp_path, image):
    path = tmp_path / "shape.png"
    image.save(path)
    return str(path)


def reply(tiny, conversation, max_new_tokens=5) -> str:
    return generate_text(tiny[0], tiny[1], conversation, max_new_tokens)[0]


def test_adapters_import_without_their_harnesses():
    assert "vlmeval" not in sys.modules and "lmms_eval" not in sys.modules
    with pytest.raises(ImportError, match="lmms-eval is not installed: pip install lmms-eval"):
        lmms_class()
    with pytest.raises(ImportError, match="VLMEvalKit is not installed"):
        register_vlmevalkit(model_path="tiny")


# -- VLMEvalKit --------------------------------------------------------------------------------------
def test_vlmevalkit_generate_answers_an_interleaved_message(tiny, png):
    model = NexusOVLMEval(model=tiny[0], processor=tiny[1], max_new_tokens=5)
    message = [{"type": "image", "value": png}, {"type": "text", "value": "What colour is the shape?"}]
    expected = reply(tiny, {"messages": [{"role": "user", "content": "<image>What colour is the shape?"}],
                            "images": [png]})
    assert model.generate(message=message, dataset="MMStar") == expected
    assert model.generate([png, "What colour is the shape?"]) == expected  # VLMEvalKit's list-of-strings form
    with pytest.raises(ValueError, match="item 0 has type 'point'"):
        model.generate([{"type": "point", "value": "1,2"}])
    with pytest.raises(ValueError, match="remote media"):
        model.generate(["https://example.com/cat.png", "What is this?"])


def test_vlmevalkit_custom_prompts_per_dataset_type(tiny, png):
    kinds = {"MMBench_DEV_EN": "MCQ", "HallusionBench": "Y/N", "TextVQA_VAL": "VQA", "MMVet": "VQA"}
    model = NexusOVLMEval(model=tiny[0], processor=tiny[1], max_new_tokens=4, dataset_type=kinds.get)
    assert [model.use_custom_prompt(d) for d in kinds] == [True, True, True, False]
    assert not model.use_custom_prompt("SomethingElse")
    line = {"index": 3, "question": "Which colour?", "A": "red", "B": "blue", "C": float("nan"), "hint": float("nan")}
    with pytest.raises(ValueError, match="no dump_image function set"):
        model.build_prompt(line, "MMBench_DEV_EN")
    model.set_dump_image(lambda row: png)
    message = model.build_prompt(line, "MMBench_DEV_EN")
    assert message[0] == {"type": "image", "value": png}
    assert message[1]["value"] == ("Question: Which colour?\nOptions:\nA. red\nB. blue\n"
                                   "Answer with the option's letter from the given choices directly.")
    assert model.build_prompt(line, "HallusionBench")[1]["value"] == "Which colour? Please answer yes or no."
    assert isinstance(model.generate(message, dataset="MMBench_DEV_EN"), str)


def test_register_vlmevalkit_adds_a_constructor():
    registry = register_vlmevalkit("NEXUS-O-7B", registry={}, model_path="/ckpt/nexus-o", max_new_tokens=64)
    entry = registry["NEXUS-O-7B"]
    assert entry.func is NexusOVLMEval and entry.keywords == {"model_path": "/ckpt/nexus-o", "max_new_tokens": 64}


# -- lmms-eval ---------------------------------------------------------------------------------------
def instance(context, doc_id, gen_kwargs=None, target=None):
    """An lmms-eval `Instance` as a model sees it: only `.args` matters."""
    visual = lambda doc: [doc["image"]]
    if target is not None:
        return SimpleNamespace(args=(context, target, visual, doc_id, "demo", "test"))
    return SimpleNamespace(args=(context, gen_kwargs or {"max_new_tokens": 5}, visual, doc_id, "demo", "test"))


@pytest.fixture
def lmms(tiny, image):
    model = NexusOLmmsModel(model=tiny[0], processor=tiny[1], batch_size="2", device="cpu")
    model.task_dict = {"demo": {"test": [{"image": image}, {"image": image.rotate(90)}, {"image": image.convert("L")}]}}
    return model


def test_lmms_generate_until_batches_and_stops(lmms, tiny):
    docs = lmms.task_dict["demo"]["test"]
    questions = ["<image>\nWhat colour?", "What shape?", "How many?"]
    got = lmms.generate_until([instance(q, i) for i, q in enumerate(questions)])  # batches of 2, then 1
    expected = [reply(tiny, {"messages": [{"role": "user", "content": [
        {"type": "image", "image": doc["image"]}, {"type": "text", "text": q.replace("<image>", "").strip()}]}]})
        for doc, q in zip(docs, questions)]
    assert got == expected
    stop = expected[0][2:4]
    cut = lmms.generate_until([instance(questions[0], 0, {"max_new_tokens": 5, "until": [stop]})])
    assert cut == [expected[0].split(stop)[0]]


def test_lmms_loglikelihood_scores_the_continuation_tokens(lmms, tiny):
    model, processor = tiny
    doc = lmms.task_dict["demo"]["test"][0]
    conversation = {"messages": [{"role": "user", "content": [{"type": "image", "image": doc["image"]},
                                                              {"type": "text", "text": "What colour?"}]}]}
    batch = processor.apply_chat_template(conversation, add_generation_prompt=True)
    with torch.no_grad():
        logprobs = model(**batch).logits[0, -1].float().log_softmax(-1)
    tokenizer = processor.tokenizer
    ranked = [int(i) for i in logprobs.argsort(descending=True)]
    checked = 0
    for token_id in ranked[:20]:  # single tokens whose text encodes back to themselves
        text = tokenizer.decode([token_id])
        if tokenizer(text, add_special_tokens=False)["input_ids"] != [token_id]:
            continue
        (score, greedy), = lmms.loglikelihood([instance("What colour?", 0, target=text)])
        assert score == pytest.approx(float(logprobs[token_id]), abs=1e-4)
        assert greedy == (token_id == ranked[0])
        checked += 1
        if checked == 2:
            break
    assert checked == 2
    two = lmms.loglikelihood([instance("What colour?", 0, target=lambda d: "red square")])
    assert two[0][0] < 0 and isinstance(two[0][1], bool)
    with pytest.raises(NotImplementedError, match="multi-round"):
        lmms.generate_until_multi_round([])


def test_lmms_class_and_registration_with_a_stand_in_lmms_eval(tiny, monkeypatch):
    """lmms-eval's module layout, as its models and registries use it, faked in sys.modules."""
    class lmms:
        def __init__(self):
            self.task_dict, self._rank, self._world_size = {}, 0, 1

    @dataclass(frozen=True)
    class ModelManifest:
        model_id: str
        simple_class_path: str | None = None

    manifests, legacy = {}, {}
    registry_v2 = SimpleNamespace(register_manifest=lambda m, overwrite=False: manifests.setdefault(m.model_id, m))
    modules = {"lmms_eval": {}, "lmms_eval.api": {}, "lmms_eval.api.model": {"lmms": lmms},
               "lmms_eval.api.registry": {"register_model": lambda name: lambda cls: legacy.setdefault(name, cls)},
               "lmms_eval.models": {"MODEL_REGISTRY_V2": registry_v2},
               "lmms_eval.models.registry_v2": {"ModelManifest": ModelManifest}}
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
    lmms_class.cache_clear()
    try:
        cls = lmms_adapter.NexusOLmms
        assert issubclass(cls, lmms) and issubclass(cls, NexusOLmmsModel)
        assert cls.__module__ + "." + cls.__name__ == lmms_adapter.CLASS_PATH
        built = cls(model=tiny[0], processor=tiny[1], device="cpu")
        assert built.task_dict == {} and built.rank == 0 and built.world_size == 1
        assert register_lmms_eval("nexus_o") == "nexus_o"
        assert manifests["nexus_o"].simple_class_path == "nexus_o.eval.harness.lmms_eval.NexusOLmms"
        assert legacy["nexus_o"] is cls
    finally:
        lmms_class.cache_clear()
