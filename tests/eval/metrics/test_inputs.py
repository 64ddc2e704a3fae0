import pytest

from nexus_o.eval.metrics import LineCountMismatchError, MetricInputError, read_lines, read_paired


def test_read_lines_keeps_inner_empty_lines_and_drops_final_newline(tmp_path):
    path = tmp_path / "h.txt"
    path.write_bytes("\ufeffa b\r\n\r\nc\u2028d\n".encode())
    assert read_lines(path) == ["a b", "", "c\u2028d"]


def test_read_lines_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_lines(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(MetricInputError, match="latin1.txt: not UTF-8"):
        read_lines(bad)


def test_read_paired_names_both_files_and_counts(tmp_path):
    refs, hyps = tmp_path / "refs.txt", tmp_path / "hyps.txt"
    refs.write_text("a\nb\nc\n")
    hyps.write_text("a\nb\n")
    with pytest.raises(LineCountMismatchError) as info:
        read_paired(refs, hyps)
    message = str(info.value)
    assert f"{refs} has 3 lines" in message and f"{hyps} has 2 lines" in message


def test_empty_files_are_an_error(tmp_path):
    (tmp_path / "r").write_text("")
    (tmp_path / "h").write_text("")
    with pytest.raises(MetricInputError, match="nothing to score"):
        read_paired(tmp_path / "r", tmp_path / "h")
