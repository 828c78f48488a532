"""The results CSV itself: quoting, formula neutralisation, UTF-8, and reading it back for
--resume (spreadsheet-saved files, hand edits, hostile files, linear time)."""

from __future__ import annotations

import csv
import io
import os

import pytest
from guards import time_limit

from dgs_desktop.record import ScanRecord
from dgs_desktop.scan.csvio import (
    COLUMNS,
    CsvError,
    RunInfo,
    csv_text,
    parse_results_csv,
    read_results_csv,
    result_row,
    row_line,
    run_mismatch,
    safe_cell,
)

RUN = RunInfo(checkpoint="/models/dgs", checkpoint_sha256="ab" * 32, device="cpu", threshold=0.5)
ATTACK = "=cmd|' -C calc'!A0"


def ok(path: str, p: float = 0.25, **fields) -> ScanRecord:
    return ScanRecord(path=path, status="ok", sha256="0" * 64, fake_probability=p, width=64, height=64,
                      format="PNG", **fields)


def parse(text: str, delimiter: str = ","):
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def test_a_carriage_return_in_a_file_name_cannot_start_a_new_row():
    evil = f"/evidence/a\r{ATTACK}.png"
    text = csv_text([ok(evil), ok("/evidence/b,\"quoted\"\nname.png")], RUN)
    rows = parse(text)
    assert len(rows) == 3 and all(len(row) == len(COLUMNS) for row in rows)
    assert rows[1][0] == evil and rows[2][0] == "/evidence/b,\"quoted\"\nname.png"
    # The CR is inside quotes, so readers that end rows at a bare CR keep it in the field too.
    line = row_line(result_row(ok(evil), RUN))
    assert line.startswith('"/evidence/a\r' + ATTACK + '.png",') and line.endswith("\n")
    assert line.count("\n") == 1


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_cells_that_a_spreadsheet_would_run_as_formulas_get_a_quote(start):
    assert safe_cell(start + "HYPERLINK(\"http://x\")") == "'" + start + "HYPERLINK(\"http://x\")"
    result = ok("/e/a.png", notes=[start + "1+1"], provenance=start + "SUM(A1)")
    result.error = ""
    row = dict(zip(COLUMNS, parse(csv_text([result], RUN))[1]))
    assert row["notes"] == "'" + start + "1+1" and row["provenance"] == "'" + start + "SUM(A1)"
    # our own values are left as they are
    assert row["fake_probability"] == "0.25000000" and row["threshold"] == "0.5" and row["verdict"] == "real"


def test_ordinary_text_is_not_changed():
    for text in ("/evidence/photo.jpg", "EXIF orientation 6 applied", "a=b", "0.5", ""):
        assert safe_cell(text) == text


def test_names_that_are_not_utf8_are_written_as_valid_utf8_with_their_exact_bytes():
    raw = b"/evidence/caf\xe9 \xff.png"
    name = os.fsdecode(raw)
    text = csv_text([ok(name)], RUN)
    data = text.encode("utf-8")  # would raise for a lone surrogate
    data.decode("utf-8")
    row = dict(zip(COLUMNS, parse(text)[1]))
    assert row["path"] == "/evidence/caf\\xe9 \\xff.png"
    assert bytes.fromhex(row["path_bytes_hex"]) == raw
    existing = parse_results_csv(data)
    assert existing.done_keys == {raw}  # --resume matches the file by its bytes


def test_tab_delimited_copy_uses_the_same_rules():
    text = csv_text([ok("/e/tab\there.png", notes=["=1+1"])], RUN, delimiter="\t")
    rows = parse(text, delimiter="\t")
    assert rows[0] == list(COLUMNS)
    assert rows[1][0] == "/e/tab\there.png" and rows[1][COLUMNS.index("notes")] == "'=1+1"


def test_a_result_without_a_model_has_no_verdict_or_threshold():
    row = dict(zip(COLUMNS, parse(csv_text([ScanRecord(path="/e/x.png", status="queued")], None))[1]))
    assert row["status"] == "queued" and row["verdict"] == "" and row["threshold"] == ""


# ---------------------------------------------------------------------------- reading back
def our_csv(count: int, run: RunInfo = RUN) -> str:
    return csv_text([ok(f"/evidence/img{i:05d}.png", p=(i % 100) / 100) for i in range(count)], run)


def test_an_excel_saved_csv_with_bom_and_crlf_is_understood():
    excel = ("\ufeff" + our_csv(5).replace("\n", "\r\n")).encode("utf-8")
    existing = parse_results_csv(excel)
    assert len(existing.rows) == 5 and existing.cut_line is None and not existing.exact
    assert existing.done_keys == {f"/evidence/img{i:05d}.png".encode() for i in range(5)}


def test_an_added_column_and_a_row_without_it_are_kept():
    lines = our_csv(4).splitlines()
    lines[0] += ",analyst note"
    lines[1] += ",looks edited"
    lines[3] += ',"=2+2, see case file"'
    existing = parse_results_csv(("\n".join(lines) + "\n").encode())
    assert existing.header[-1] == "analyst note" and len(existing.rows) == 4
    assert existing.column("analyst note") == ["looks edited", "", "=2+2, see case file", ""]


@pytest.mark.parametrize("damage", ["drop-a-middle-field", "shifted-status", "extra-field"])
def test_a_row_that_cannot_be_understood_is_refused_with_its_line(damage):
    lines = our_csv(6).splitlines()
    fields = parse(lines[3])[0]
    if damage == "drop-a-middle-field":
        del fields[3]
    elif damage == "shifted-status":
        fields[2], fields[3] = fields[3], fields[2]
    else:
        fields.append("surprise")
    lines[3] = ",".join(fields)
    with pytest.raises(CsvError, match="line 4"):
        parse_results_csv(("\n".join(lines) + "\n").encode(), "scan.csv")


def test_only_an_incomplete_last_line_is_cut():
    text = our_csv(5)
    cut = text[: len(text) - 30]
    existing = parse_results_csv(cut.encode())
    assert len(existing.rows) == 4 and existing.cut_line == 6
    assert existing.complete_bytes == len(text.encode()) - len(text.splitlines(keepends=True)[-1].encode())


def test_not_our_csv_is_refused():
    for data in (b"name,size\nx,1\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\x00" * 100):
        with pytest.raises(CsvError, match="not a DGS Desktop scan CSV"):
            parse_results_csv(data)


def test_reading_is_linear_for_twenty_thousand_rows():
    """The old backward search re-parsed the file once per line (4,000 rows: 28 s). One pass
    now: 20,000 rows with a bad last row are read and refused well within the guard."""
    lines = our_csv(20_000).splitlines()
    good = ("\n".join(lines) + "\n").encode()
    with time_limit(60, "reading 20,000 rows"):
        assert len(parse_results_csv(good).rows) == 20_000
        bad = ("\n".join(lines + ["/evidence/x.png,broken"]) + "\n").encode()
        with pytest.raises(CsvError, match="line 20002"):
            parse_results_csv(bad)


def test_resume_reads_only_regular_files_and_a_bounded_amount(tmp_path):
    with time_limit(10, "resuming from special files"):
        if os.path.exists("/dev/zero"):
            with pytest.raises(CsvError, match="not a regular file"):
                read_results_csv("/dev/zero")
        fifo = tmp_path / "fifo.csv"
        os.mkfifo(fifo)
        with pytest.raises(CsvError, match="not a regular file"):
            read_results_csv(fifo)
    big = tmp_path / "big.csv"
    big.write_text(our_csv(50))
    with pytest.raises(CsvError, match="larger than"):
        read_results_csv(big, limit=1000)


def test_rows_from_another_model_or_threshold_are_detected():
    existing = parse_results_csv(our_csv(3).encode())
    assert run_mismatch(existing, RUN) == ""
    other = RunInfo(checkpoint="/models/other", checkpoint_sha256="cd" * 32, device="cpu", threshold=0.7)
    message = run_mismatch(existing, other)
    assert "checkpoint" in message and "threshold 0.5" in message



def test_an_unclosed_quote_in_an_edited_row_is_refused_not_cut():
    lines = our_csv(30).splitlines()
    lines[5] = lines[5].replace("/evidence/", '"/evidence/', 1)  # a stray quote: the rest is one field
    with pytest.raises(CsvError, match="line 6"):
        parse_results_csv("\n".join(lines).encode())  # no final line end either
    with pytest.raises(CsvError, match="line 6"):
        parse_results_csv(("\n".join(lines) + "\n").encode())
