"""nexus-o inside lmms-eval (0.7.3, installed by scripts/install.sh): its registry, its evaluator,
its CLI, on local tasks built from the tiny world, both model modes, multi-round tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from nexus_o.bundle.omni import OmniModel
from nexus_o.eval.harness.lmms_eval import CHAT_CLASS_PATH, CLASS_PATH, lmms_chat_class, lmms_class
from nexus_o.eval.harness.lmms_tasks import doc_to_messages, write_lmms_tasks
from nexus_o.eval.runner import run_eval
from nexus_o.eval.tasks import EvalError
from nexus_o.inference.text import generate_text
from tests.eval.lmms_helpers import ROOT, entry_point_site, expected_rounds, rounds_task, world_subset

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))


@pytest.fixture(scope="module")
def bench(world, tmp_path_factory) -> dict[str, Path]:
    return world_subset(world[0], tmp_path_factory.mktemp("lmms_bench"))


def test_lmms_entry_point_resolves_both_modes_through_lmms_evals_registry(tmp_path, monkeypatch):
    from lmms_eval.api.model import lmms
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    monkeypatch.syspath_prepend(str(entry_point_site(tmp_path)))
    registry = ModelRegistryV2()
    registry.load_entrypoint_manifests()  # what `import lmms_eval.models` does for installed plugins
    assert registry.resolve("nexus_o").class_path == CHAT_CLASS_PATH
    assert registry.resolve("nexus_o", force_simple=True).class_path == CLASS_PATH
    chat, simple = registry.get_model_class("nexus_o"), registry.get_model_class("nexus_o", force_simple=True)
    assert chat is lmms_chat_class() and simple is lmms_class()
    assert issubclass(chat, lmms) and not chat.is_simple and simple.is_simple


def test_lmms_local_tasks_keep_the_prompt_and_refuse_tts(bench, world, tmp_path):
    names = write_lmms_tasks({"asr": bench["asr"], "vqa": bench["vqa"]}, tmp_path / "tasks", max_new_tokens=4)
    assert names == ["nexus_o_asr_en", "nexus_o_vqa_en"]
    docs = [json.loads(line) for line in (tmp_path / "tasks" / "nexus_o_vqa_en.jsonl").read_text().splitlines()]
    spoken = doc_to_messages(docs[0])
    assert spoken[0]["role"] == "system" and [p["type"] for p in spoken[1]["content"]] == ["image", "audio"]
    assert all(Path(p["url"]).is_file() for p in spoken[1]["content"])
    line = json.loads(bench["vqa"].read_text().splitlines()[3])
    assert doc_to_messages(docs[3]) == [{"role": "user", "content": [
        {"type": "image", "url": line["images"][0]},
        {"type": "text", "text": line["messages"][0]["content"].removeprefix("<image>")}]}]
    with pytest.raises(EvalError, match="no lmms-eval task for 'tts'"):
        write_lmms_tasks({"tts": world[0] / "test" / "tts.jsonl"}, tmp_path / "tasks")


def test_lmms_eval_cli_runs_nexus_o_on_local_tiny_world_tasks(tiny, bench, tmp_path):
    """`python -m lmms_eval` (lmms-eval's own CLI), nexus_o found through the entry point, chat mode.
    Its figures and replies equal `nexus-o eval`'s on the same files."""
    tasks = tmp_path / "tasks"
    names = write_lmms_tasks({"asr": bench["asr"], "vqa": bench["vqa"]}, tasks, max_new_tokens=4)
    site = entry_point_site(tmp_path / "site")
    env = {**os.environ, **OFFLINE, "HF_DATASETS_CACHE": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "nexus_o", "--model_args", "pretrained=tiny",
           "--tasks", ",".join(names), "--include_path", str(tasks), "--output_path", str(out), "--log_samples",
           "--verbosity", "DEBUG"]  # DEBUG: lmms-eval re-raises instead of logging the error and exiting 0
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (results_file,) = out.glob("*/*_results.json")
    results = json.loads(results_file.read_text())
    assert results["config"]["model_backend"] == "nexus_o.eval.harness.lmms_eval.NexusOLmmsChat (chat)"
    assert results["n-samples"]["nexus_o_vqa_en"]["effective"] == 4

    ours = run_eval(OmniModel(*tiny), [f"asr={bench['asr']}", f"vqa={bench['vqa']}"], None, tmp_path / "ours", batch_size=1,
                    max_new_tokens=4, progress=False)
    assert results["results"]["nexus_o_asr_en"]["wer,none"] == pytest.approx(ours["tasks"]["asr"]["scores"][0]["score"])
    assert results["results"]["nexus_o_vqa_en"]["accuracy,none"] == \
        pytest.approx(ours["tasks"]["vqa"]["scores"][0]["score"])
    for name, task in (("nexus_o_asr_en", "asr"), ("nexus_o_vqa_en", "vqa")):
        (samples_file,) = out.glob(f"*/*_samples_{name}.jsonl")
        replies = [json.loads(line)["filtered_resps"] for line in samples_file.read_text().splitlines()]
        cached = (tmp_path / "ours" / "predictions" / f"{task}.jsonl").read_text().splitlines()
        assert replies == [json.loads(line)["prediction"] for line in cached]


def _reply(tiny):
    def reply(image, text):
        conversation = {"messages": [{"role": "user", "content": [{"type": "image", "image": image},
                                                                  {"type": "text", "text": text}]}]}
        return generate_text(tiny[0], tiny[1], conversation, 3)[0]
    return reply


@pytest.mark.parametrize("chat", [False, True], ids=["simple", "chat"])
def test_lmms_evaluator_runs_a_multi_round_task(tiny, tmp_path, offline, chat):
    """lmms-eval's `simple_evaluate` on a two- and a three-round task: every round's reply, in order,
    each round prompted by the task's round function with the replies so far."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    image = tmp_path / "shape.png"
    Image.new("RGB", (56, 56), "red").save(image)
    tasks = rounds_task(tmp_path / "tasks", str(image))
    cls = lmms_chat_class() if chat else lmms_class()
    lm = cls(model=tiny[0], processor=tiny[1], device="cpu", max_new_tokens=8)
    results = simple_evaluate(model=lm, tasks=["nexus_o_rounds"], task_manager=TaskManager("ERROR", include_path=str(tasks)),
                              log_samples=True, bootstrap_iters=0, verbosity="ERROR")
    assert results["results"]["nexus_o_rounds"]["rounds,none"] == pytest.approx(2.5)
    samples = results["samples"]["nexus_o_rounds"]
    for sample in samples:
        doc = sample["doc"]
        assert sample["resps"][0] == [expected_rounds(_reply(tiny), str(image), doc["question"], doc["rounds"])]


def test_register_lmms_eval_and_chat_message_errors():
    from lmms_eval.models import get_model

    from nexus_o.eval.harness.lmms_eval import chat_messages, register_lmms_eval

    assert register_lmms_eval("nexus_o_checkout") == "nexus_o_checkout"
    assert get_model("nexus_o_checkout") is lmms_chat_class()
    assert get_model("nexus_o_checkout", force_simple=True) is lmms_class()
    assert chat_messages([{"role": "user", "content": "hi"}], "t[0]") == \
        [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    with pytest.raises(ValueError, match=r"t\[3\]: message 0 part 1 has type 'point'"):
        chat_messages([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "point"}]}], "t[3]")
    with pytest.raises(ValueError, match="start/end times are not supported"):
        chat_messages([{"role": "user", "content": [{"type": "video", "url": {"path": "v.mp4", "video_start": 1}}]}],
                      "t[4]")
