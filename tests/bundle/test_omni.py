"""The public names at the root, `load_model` bundles, and config keys of older checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_public_names_import_from_the_root_and_importing_stays_cheap():
    code = ("import sys, nexus_o; assert 'torch' not in sys.modules, 'import nexus_o imported torch'; "
            "from nexus_o import NexusOConfig, NexusOForConditionalGeneration, NexusOProcessor, load_model, "
            "OmniModel, from_components, build_preset; "
            "from nexus_o.models.modeling import NexusOForConditionalGeneration as M; "
            "assert NexusOForConditionalGeneration is M; print(nexus_o.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import nexus_o

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nexus_o.nope  # noqa: B018


def test_the_tiny_preset_bundle_speaks_through_the_shipped_codec():
    from nexus_o import load_model
    from nexus_o.codecs.builtin import default_codec_dir

    omni = load_model("tiny").eval()
    assert omni.can_speak and omni.codec.name == "builtin"
    assert omni.model.speech_decoder.vocab.codec_entries == omni.codec.codebook_size
    assert default_codec_dir().is_dir()
    assert omni.session(max_speech_seconds=0.3).max_speech_seconds == 0.3
    reply = omni.chat([{"role": "user", "content": "hi"}], modalities=["text", "audio"])
    assert reply.sample_rate == omni.codec.sample_rate and reply.audio.size > 0


def test_a_bundle_round_trips_with_its_codec(tmp_path, tiny):
    from nexus_o.bundle.loading import load_model
    from nexus_o.bundle.omni import OmniModel
    from nexus_o.codecs.registry import load_codec
    from nexus_o.codecs.builtin import default_codec_dir

    codec = load_codec(default_codec_dir())
    with pytest.raises(ValueError, match="speech decoder"):  # the codec is checked against the decoder
        from nexus_o.bundle.loading import build_preset

        model, processor = build_preset("tiny")
        model.add_speech_decoder({"num_codebooks": 4, "codebook_size": 67, "codec_entries": 64,
                                  "llm_hidden_size": 64, "num_layers": 1, "hidden_size": 32, "num_heads": 2,
                                  "intermediate_size": 64})
        OmniModel(model, processor, codec)
    OmniModel(*tiny, codec).save_pretrained(tmp_path)
    again = load_model(tmp_path)
    assert again.codec is not None and again.codec.codebook_size == codec.codebook_size
    assert not again.can_speak  # the tiny pair has no speech decoder


def test_checkpoints_with_the_old_codec_keys_still_load_and_unknown_keys_stay_errors(tiny, tmp_path):
    from nexus_o.models.configuration import NexusOConfig

    model, _ = tiny
    model.config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "codec" not in saved and "codec_config" not in saved
    saved.update(codec="firefly", codec_config=None)  # what nexus-o 0.1.0 wrote
    (tmp_path / "config.json").write_text(json.dumps(saved))
    config = NexusOConfig.from_pretrained(tmp_path)
    assert not hasattr(config, "codec") and config.to_dict().get("codec") is None
    saved["codec_name"] = "firefly"
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="codec_name"):
        NexusOConfig.from_pretrained(tmp_path)


def test_the_configs_audio_token_ids_must_be_the_tokenizers():
    from nexus_o import OmniModel, build_preset

    model, processor = build_preset("tiny")
    OmniModel(model, processor)
    model.config.audio_end_token_id = 3
    with pytest.raises(ValueError, match=r"audio_end_token_id=3 but the processor's tokenizer has <\|audio_eos\|> "
                                         r"at id 9"):
        OmniModel(model, processor)


def test_warm_up_runs_a_spoken_reply_up_to_its_first_audio(one_thread):
    from tests.serve.conftest import speaking_tiny
    omni = speaking_tiny()
    assert omni.can_speak
    assert 0 < omni.warm_up(max_new_tokens=4) < 60


def test_warm_up_decodes_a_batch_of_each_size_asked(one_thread, monkeypatch):
    """On CUDA each row count has its own decode graph: warm-up must reach a decode step of each."""
    from nexus_o.inference.reply_steps import ReplyDecoder
    from tests.serve.conftest import speaking_tiny
    omni = speaking_tiny()
    rows, new_cache = [], ReplyDecoder._new_cache

    def spy(self, count, length, masked):
        rows.append(count)
        return new_cache(self, count, length, masked)

    monkeypatch.setattr(ReplyDecoder, "_new_cache", spy)
    omni.warm_up(max_new_tokens=4, batch_sizes=(2, 3))
    assert rows == [1, 2, 3]
