"""The VLMEvalKit and lmms-eval adapters on the tiny preset, fed messages shaped like each harness's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from nexus_o.eval.harness.lmms_eval import NexusOLmmsModel
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
    """Importing the adapters loads neither harness (lmms-eval is installed here, VLMEvalKit is not)."""
    code = ("import sys, nexus_o.eval.harness.lmms_eval, nexus_o.eval.harness.vlmevalkit, nexus_o.eval.harness.lmms_tasks; "
            "print(sorted(m for m in ('lmms_eval', 'vlmeval') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.stdout.strip() == "[]"
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


def test_vlmevalkit_custom_tsv_from_the_tiny_world_drives_the_adapter(tiny, world, tmp_path):
    """The custom-dataset file VLMEvalKit reads ($LMUData/NAME.tsv), read back the way VLMEvalKit does
    (pandas, base64 images dumped to files), each line through build_prompt and generate."""
    import base64

    import pandas as pd

    from nexus_o.eval.harness.vlmevalkit import message_parts, write_vlmevalkit_tsv
    from nexus_o.eval.tasks import EvalError

    manifest = world[0] / "test" / "vqa.jsonl"
    with pytest.raises(EvalError, match=r"vqa\.jsonl:1: VLMEvalKit's image datasets take one image and text; "
                                        r"this line has 1 images, 1 audios"):
        write_vlmevalkit_tsv(manifest, tmp_path / "NexusTiny.tsv")
    written, skipped = write_vlmevalkit_tsv(manifest, tmp_path / "NexusTiny.tsv", skip_unsupported=True)
    data = pd.read_csv(tmp_path / "NexusTiny.tsv", sep="\t")
    assert list(data.columns) == ["index", "image", "question", "answer"] and len(data) == written > 0 and skipped > 0

    def dump_image(line):  # what VLMEvalKit's ImageBaseDataset.dump_image does for a base64 column
        path = tmp_path / "images" / f"{line['index']}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(base64.b64decode(line["image"]))
        return [str(path)]

    model = NexusOVLMEval(model=tiny[0], processor=tiny[1], max_new_tokens=3, dataset_type={"NexusTiny": "VQA"}.get)
    model.set_dump_image(dump_image)
    assert model.use_custom_prompt("NexusTiny")
    for _, line in data.head(2).iterrows():
        message = model.build_prompt(line, "NexusTiny")
        assert message[0]["type"] == "image" and message[1]["value"].startswith(line["question"])
        expected = reply(tiny, {"messages": [{"role": "user", "content": message_parts(message)}]}, 3)
        assert model.generate(message, dataset="NexusTiny") == expected
