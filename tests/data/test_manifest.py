"""Manifest parsing: every schema error names its line and says what is wrong."""

from __future__ import annotations

import base64

import pytest

from nexus_o.data.manifest import ManifestError, RejectLog, read_manifest, validate_manifest
from tests.data.media_files import asr_line, write_corrupt, write_empty_wav, write_manifest, write_png, write_wav


def _first_error(tmp_path, lines) -> ManifestError:
    path = write_manifest(tmp_path / "m.jsonl", lines)
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path, on_error="raise"))
    return info.value


def test_tag_list_mismatch_names_line_and_both_counts(tmp_path):
    bad = asr_line("a.wav")
    bad["messages"][0]["content"] = "<audio><audio> compare these"
    err = _first_error(tmp_path, [asr_line("a.wav"), bad])
    assert err.line == 2
    assert "2 <audio> tag(s)" in err.reason and "1 entry in 'audios'" in err.reason
    assert str(err).startswith(f"{tmp_path / 'm.jsonl'}:2:")


def test_unknown_top_level_key_is_named(tmp_path):
    err = _first_error(tmp_path, [asr_line("a.wav", conversations=[])])
    assert (err.line, err.reason) == (1, "unknown key 'conversations'")


def test_unknown_key_inside_a_content_part(tmp_path):
    line = asr_line("a.wav")
    line["messages"][0]["content"] = [{"type": "text", "txt": "hi"}]
    err = _first_error(tmp_path, [line])
    assert "unknown key 'txt' in messages[0].content[0]" in err.reason


@pytest.mark.parametrize("raw, reason", [
    ("{not json", "invalid JSON"),
    ("", "empty line"),
    ("   ", "empty line"),
    ("[1, 2]", "expected a JSON object, got list"),
    (b'{"messages": "\xff\xfe"}', "not valid UTF-8 (byte 0xff at column 15)"),
])
def test_malformed_lines(tmp_path, raw, reason):
    err = _first_error(tmp_path, [asr_line("a.wav"), asr_line("b.wav"), raw])
    assert err.line == 3
    assert reason in err.reason


def test_role_and_structure_errors(tmp_path):
    line = asr_line("a.wav")
    line["messages"][1]["role"] = "bot"
    assert "messages[1].role" in _first_error(tmp_path, [line]).reason
    no_answer = asr_line("a.wav")
    no_answer["messages"] = no_answer["messages"][:1]
    assert "no assistant message" in _first_error(tmp_path, [no_answer]).reason
    late_system = asr_line("a.wav")
    late_system["messages"].append({"role": "system", "content": "x"})
    assert "system message may only come first" in _first_error(tmp_path, [late_system]).reason


def test_speech_target_rules(tmp_path):
    def with_speech(speech):
        return asr_line("a.wav", speech=speech)

    assert "exactly one of 'audio'" in _first_error(tmp_path, [with_speech({})]).reason
    assert "rows differ in length" in _first_error(tmp_path, [with_speech({"codes": [[1, 2], [3]]})]).reason
    assert "negative" in _first_error(tmp_path, [with_speech({"codes": [[1, -2]]})]).reason
    assert ".npy" in _first_error(tmp_path, [with_speech({"codes": "codes.pt"})]).reason
    ok = [with_speech({"codes": [[1, 2], [3, 4]]}), with_speech({"audio": "t.wav"})]
    samples = list(read_manifest(write_manifest(tmp_path / "ok.jsonl", ok)))
    assert samples[0][1].speech.codes == [[1, 2], [3, 4]]


def test_remote_urls_are_refused(tmp_path):
    err = _first_error(tmp_path, [asr_line("https://example.com/a.wav")])
    assert "not fetched at run time" in err.reason


def test_relative_paths_resolve_against_the_manifest_folder(tmp_path, monkeypatch):
    sub = tmp_path / "data" / "v1"
    sub.mkdir(parents=True)
    line = asr_line("clips/a.wav", reference_audio="../voice.wav", speech={"audio": "/abs/t.wav"})
    path = write_manifest(sub / "m.jsonl", [line])
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    (_, sample), = read_manifest(path)
    assert sample.audios == [str(sub / "clips" / "a.wav")]
    assert sample.reference_audio == str(tmp_path / "data" / "voice.wav")
    assert sample.speech.audio == "/abs/t.wav"


def test_openai_content_parts_become_tags_and_lists(tmp_path):
    audio_b64 = base64.b64encode(b"RIFF....").decode()
    line = {"messages": [
        {"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": audio_b64, "format": "wav"}},
            {"type": "image_url", "image_url": {"url": "cat.png"}},
            {"type": "text", "text": "Describe both."},
            {"type": "audio", "audio": "b.wav"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}]}
    (_, sample), = read_manifest(write_manifest(tmp_path / "m.jsonl", [line]))
    assert sample.messages[0].content == "<audio><image>Describe both.<audio>"
    assert sample.messages[1].content == "A cat."
    assert sample.audios == [f"data:audio/wav;base64,{audio_b64}", str(tmp_path / "b.wav")]
    assert sample.images == [str(tmp_path / "cat.png")]


def test_parts_and_list_for_one_modality_conflict(tmp_path):
    line = asr_line("a.wav")
    line["messages"][0]["content"] = [{"type": "audio", "audio": "b.wav"}]
    assert "both as content parts and in 'audios'" in _first_error(tmp_path, [line]).reason


def test_skip_records_and_continues_raise_stops(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [asr_line("a.wav"), "oops", asr_line("b.wav", extra=1),
                                                 asr_line("c.wav")])
    rejects = RejectLog(tmp_path / "rejects.jsonl")
    kept = [n for n, _ in read_manifest(path, on_error="skip", rejects=rejects)]
    assert kept == [1, 4]
    assert [(i.line, i.reason[:12]) for i in rejects.issues] == [(2, "invalid JSON"), (3, "unknown key ")]
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == 2
    with pytest.raises(ManifestError, match=":2: invalid JSON"):
        list(read_manifest(path, on_error="raise"))


def test_missing_file_names_path_and_line(tmp_path):
    write_wav(tmp_path / "a.wav")
    path = write_manifest(tmp_path / "m.jsonl", [asr_line("a.wav"), asr_line("gone.wav")])
    with pytest.raises(ManifestError) as info:
        list(read_manifest(path, media="exists"))
    assert info.value.line == 2
    assert f"audios[0]: file not found: {tmp_path / 'gone.wav'}" in info.value.reason


def test_validate_manifest_report(tmp_path):
    write_wav(tmp_path / "a.wav", seconds=1.5)
    write_empty_wav(tmp_path / "empty.wav")
    write_corrupt(tmp_path / "corrupt.wav")
    write_png(tmp_path / "i.png")
    image_line = {"messages": [{"role": "user", "content": "<image>What is it?"},
                               {"role": "assistant", "content": "red"}], "images": ["i.png"]}
    path = write_manifest(tmp_path / "m.jsonl", [asr_line("a.wav"), asr_line("empty.wav"), image_line,
                                                 asr_line("corrupt.wav"), asr_line("a.wav", task="s2tt", id="x"),
                                                 asr_line("a.wav", id="x")])
    report = validate_manifest(path, progress=False)
    assert (report.lines, report.valid, report.ok) == (6, 3, False)
    assert [b.line for b in report.bad] == [2, 4, 6]
    assert report.bad[2].reason == "duplicate id 'x' (first on line 5)"
    assert "0 samples" in report.bad[0].reason and "does not decode" in report.bad[1].reason
    assert report.tasks == {"asr": 1, "s2tt": 1, "(none)": 1}
    assert report.modalities == {"audio": 2, "image": 1}
    assert report.audio_seconds == pytest.approx(3.0)
    schema_only = validate_manifest(path, check_media=False, progress=False)
    assert [b.line for b in schema_only.bad] == [6] and schema_only.to_dict()["audio_hours"] is None
