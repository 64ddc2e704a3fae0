"""The shared conversation model: both message shapes read into one `Conversation`, in one place."""

import pytest

from nexus_o.data.schema import Sample, sample_conversation
from nexus_o.processing.conversation import Conversation, Media, Message, Text, count_tags, split_tags


def test_tagged_and_part_messages_read_the_same():
    tagged = Conversation.from_messages([{"role": "user", "content": "<image>What digit is this?<audio>"}],
                                        images=["d.png"], audios=["q.wav"])
    parts = Conversation.from_messages([{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "d.png"}}, {"type": "text", "text": "What digit is this?"},
        {"type": "audio", "audio": "q.wav"}]}])
    assert tagged == parts == Conversation([Message("user", [
        Media("image", "d.png"), Text("What digit is this?"), Media("audio", "q.wav")])])
    assert tagged.messages[0].tagged() == "<image>What digit is this?<audio>"
    assert tagged.media("audio") == ["q.wav"] and tagged.media("video") == []


def test_to_dict_reads_back_unchanged():
    conversation = Conversation([Message("system", [Text("be brief")]),
                                 Message("user", [Media("audio", ("wav", 16000)), Text("hi")])])
    assert Conversation.from_messages(conversation.to_dict()["messages"]) == conversation


def test_tags_are_split_and_counted_in_one_place():
    assert split_tags("a<image>b<audio>") == [Text("a"), Media("image", None), Text("b"), Media("audio", None)]
    assert count_tags("<audio><audio><video>") == {"image": 0, "video": 1, "audio": 2}
    with pytest.raises(ValueError, match=r"1 <audio> tag\(s\) but 2 item\(s\)"):
        Conversation.from_messages([{"role": "user", "content": "<audio>"}], audios=["a", "b"])
    with pytest.raises(ValueError, match="unknown type 'refusal'"):
        Conversation.from_messages([{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}])


def test_a_manifest_sample_gives_the_shared_conversation():
    sample = Sample.model_validate({"messages": [
        {"role": "user", "content": [{"type": "image", "image": "d.png"}, {"type": "text", "text": "Which?"}]},
        {"role": "assistant", "content": "three"}]})
    assert sample.messages[0].content == "<image>Which?" and sample.images == ["d.png"]
    assert sample_conversation(sample) == Conversation([
        Message("user", [Media("image", "d.png"), Text("Which?")]), Message("assistant", [Text("three")])])
