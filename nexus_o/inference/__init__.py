"""Generation of text and speech, streaming."""
