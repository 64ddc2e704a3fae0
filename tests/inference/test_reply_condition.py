"""One reply condition: the speech decoder trains on and speaks from the same tokens, the last
assistant turn (the processor's `reply_mask`), in multi-turn conversations too."""

from __future__ import annotations

import torch

CONVERSATION = [{"role": "user", "content": "count"}, {"role": "assistant", "content": "one two"},
                {"role": "user", "content": "more"}]


def test_reply_mask_is_the_last_assistant_turn_without_its_end(tiny):
    _, processor = tiny
    conv = {"messages": CONVERSATION + [{"role": "assistant", "content": "three four"}]}
    batch = processor.apply_chat_template(conv, add_generation_prompt=False, return_reply_mask=True)
    ids = batch["input_ids"][0][batch["reply_mask"][0]]
    assert processor.tokenizer.decode(ids) == "three four"
    empty = processor.apply_chat_template({"messages": CONVERSATION + [{"role": "assistant", "content": ""}]},
                                          add_generation_prompt=False, return_reply_mask=True)
    assert processor.tokenizer.convert_ids_to_tokens(empty["input_ids"][0][empty["reply_mask"][0]].tolist()) \
        == ["<|im_end|>"]


def test_training_and_inference_condition_on_the_same_tokens():
    from nexus_o.bundle.loading import build_preset
    from nexus_o.bundle.omni import OmniModel
    from nexus_o.train.collate import TrainCollator

    model, processor = build_preset("tiny")
    model.add_speech_decoder({"num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64,
                              "num_codebooks": 1, "codebook_size": 19, "codec_entries": 16, "llm_hidden_size": 64})
    reply = "three four"
    row = {"messages": CONVERSATION + [{"role": "assistant", "content": reply}], "speech_codes": [[1, 2, 3]]}
    trained = TrainCollator(processor, speech=True)([row])["speech_text_mask"]
    _, spoken = OmniModel(model, processor).session().reply_states({"messages": CONVERSATION}, reply)
    assert torch.equal(trained.cpu(), spoken.cpu())
    assert int(spoken.sum()) == len(processor.tokenizer(reply, add_special_tokens=False)["input_ids"])
