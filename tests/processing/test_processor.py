import base64
import io

import numpy as np
import pytest
import soundfile as sf
import torch

from nexus_o.processing.chat import render_chat
from nexus_o.processing.media_decoding import MediaError, load_audio
from nexus_o.processing.processor import NexusOProcessor
from tests.conftest import tone


def _wav_bytes(wav, rate):
    buf = io.BytesIO()
    sf.write(buf, wav, rate, format="WAV")
    return buf.getvalue()


def test_openai_and_swift_messages_render_the_same(image):
    swift = render_chat([{"role": "user", "content": "<image>Look. <audio>"}], images=[image],
                        audios=["a.wav"], add_generation_prompt=True)
    openai = render_chat([{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "Look. "},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]}],
        add_generation_prompt=True)
    assert swift.text == openai.text
    assert swift.text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                          "<|vision_start|><|image_pad|><|vision_end|>Look. <|audio_bos|><|AUDIO|><|audio_eos|>"
                          "<|im_end|>\n<|im_start|>assistant\n")
    assert openai.audios == ["data:audio/wav;base64,UklG"]


def test_tag_list_mismatch_names_both_counts():
    with pytest.raises(ValueError, match=r"1 <audio> tag\(s\) but 2 item\(s\)"):
        render_chat([{"role": "user", "content": "<audio>"}], audios=["a.wav", "b.wav"])
    with pytest.raises(ValueError, match=r"more <image> tags than the 0 item"):
        render_chat([{"role": "user", "content": "<image>"}])


def test_placeholder_count_mismatch_in_processor(tiny):
    _, processor = tiny
    with pytest.raises(ValueError, match=r"placeholder\(s\) but 2 item\(s\)"):
        processor(text=["<|AUDIO|>"], audios=[tone(0.5), tone(0.5)])
    with pytest.raises(ValueError, match=r"2 <\|AUDIO\|> placeholder\(s\) but 1 item"):
        processor(text=["<|AUDIO|><|AUDIO|>"], audios=[tone(0.5)])


def test_token_count_follows_clip_length(tiny):
    _, processor = tiny
    for seconds, tokens in ((1.0, 10), (2.5, 25), (0.01, 1)):
        batch = processor(text=["<|AUDIO|>"], audios=[tone(seconds)])
        assert int((batch["input_ids"] == processor.audio_token_id).sum()) == tokens


def test_wrong_sample_rate_is_resampled_not_rejected(tiny, tmp_path):
    _, processor = tiny
    path = tmp_path / "a44k.wav"
    sf.write(path, tone(2.0, rate=44100), 44100)
    batch = processor(text=["<|AUDIO|>"], audios=[path])
    assert int((batch["input_ids"] == processor.audio_token_id).sum()) == 20  # 2 s -> 20 tokens
    wav, rate = load_audio((tone(1.0, rate=8000), 8000), 16000)
    assert wav.shape == (16000,) and rate == 16000


def test_empty_and_unreadable_audio_are_clear_errors(tiny, tmp_path):
    _, processor = tiny
    with pytest.raises(MediaError, match="empty"):
        processor(text=["<|AUDIO|>"], audios=[np.zeros(0, dtype=np.float32)])
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(MediaError, match=r"empty\.wav"):
        processor(text=["<|AUDIO|>"], audios=[empty])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(MediaError, match=r"bad\.wav"):
        processor(text=["<|AUDIO|>"], audios=[bad])
    with pytest.raises(MediaError, match="not found"):
        processor(text=["<|AUDIO|>"], audios=[tmp_path / "missing.wav"])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG nope")
    with pytest.raises(MediaError, match=r"broken\.png"):
        processor(text=["<|image_pad|>"], images=[broken])


def test_data_url_audio_and_relative_paths(tiny, tmp_path):
    _, processor = tiny
    b64 = base64.b64encode(_wav_bytes(tone(1.0), 16000)).decode()
    conv = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}}]}]
    a = processor.apply_chat_template(conv)
    sf.write(tmp_path / "clip.wav", tone(1.0), 16000)
    b = processor.apply_chat_template({"messages": [{"role": "user", "content": "<audio>"}], "audios": ["clip.wav"]},
                                      base_dir=tmp_path)
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.allclose(a["input_features"], b["input_features"])


def test_labels_cover_assistant_replies_only(tiny):
    _, processor = tiny
    conv = [{"role": "user", "content": "What digit?"}, {"role": "assistant", "content": "seven"}]
    batch = processor.apply_chat_template(conv, add_generation_prompt=False, return_labels=True)
    kept = batch["labels"][0][batch["labels"][0] != -100]
    assert processor.decode(kept) == "seven<|im_end|>"


def test_video_frames_through_pyav(tiny, tmp_path):
    import av

    model, processor = tiny
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(8):
            frame = np.full((48, 64, 3), i * 30, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    batch = processor.apply_chat_template({"messages": [{"role": "user", "content": "<video>What happens?"}],
                                           "videos": [path]})
    grid = batch["video_grid_thw"][0].tolist()
    assert grid[0] >= 1 and batch["pixel_values_videos"].shape[0] == int(np.prod(grid))
    assert int((batch["input_ids"] == processor.video_token_id).sum()) == int(np.prod(grid)) // 4
    with torch.no_grad():
        assert torch.isfinite(model(**batch).logits).all()


def test_processor_save_load_round_trip(tiny, tmp_path, image):
    _, processor = tiny
    processor.save_pretrained(tmp_path)
    again = NexusOProcessor.from_pretrained(tmp_path)
    conv = {"messages": [{"role": "user", "content": "<image><audio>hi"}], "images": [image], "audios": [tone(1.2)]}
    a, b = processor.apply_chat_template(conv), again.apply_chat_template(conv)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert again.audio_max_source_positions == processor.audio_max_source_positions
