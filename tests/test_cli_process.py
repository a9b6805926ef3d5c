"""`khana process` end to end through the real console script (embedded default, real Tesseract)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import run_khana, save_png

from testpages.metrics import cer

CONTRACT = {
    "file": str, "page": int, "decision": str, "reasons": list, "skew_degrees": float, "rotation": int,
    "legibility": float, "ocr_confidence": (float, type(None)), "text": str, "seconds": float, "fields": list,
    "warnings": list,
}


def check_contract(page: dict) -> None:
    assert set(page) >= set(CONTRACT), f"missing fields: {set(CONTRACT) - set(page)}"
    for key, typ in CONTRACT.items():
        if typ is float:
            assert isinstance(page[key], (int, float)) and not isinstance(page[key], bool), key
        else:
            assert isinstance(page[key], typ), key
    assert page["decision"] in ("pass", "hold")
    assert page["rotation"] in (0, 90, 180, 270)
    assert 0.0 <= page["legibility"] <= 1.0
    assert (page["decision"] == "pass") == (page["reasons"] == [])


def pdftotext(path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True).stdout


def words_only(text: str) -> str:
    """The words of a text in order: bidi controls, punctuation and spacing dropped (what a search sees)."""
    text = re.sub(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069\f]", "", text)
    return " ".join(re.findall(r"\w+", text))


@pytest.mark.slow
def test_clean_page_passes_and_pdf_is_searchable(khana_home, pages_dir, tmp_path):
    out = tmp_path / "out"
    r = run_khana("process", str(pages_dir / "clean.png"), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 1
    page = lines[0]
    check_contract(page)
    assert page["decision"] == "pass" and page["reasons"] == []
    truth = (pages_dir / "clean.txt").read_text(encoding="utf-8")
    assert cer(truth, page["text"]) <= 0.03
    assert page["ocr_confidence"] > 70
    pdf = out / "clean.pdf"
    assert pdf.is_file()
    assert cer(words_only(page["text"]), words_only(pdftotext(pdf))) <= 0.01
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["pages"][0]["text"] == page["text"]
    assert report["files"][0]["status"] == "passed"


@pytest.mark.slow
def test_blank_and_blurred_pages_are_held_with_reasons(khana_home, pages_dir, tmp_path):
    out = tmp_path / "out"
    r = run_khana("process", str(pages_dir / "blank.png"), str(pages_dir / "blurred.png"), "--out", str(out), "--json")
    assert r.returncode == 3, r.stderr
    pages = {p["file"].rsplit("/", 1)[-1]: p for p in map(json.loads, r.stdout.splitlines())}
    for p in pages.values():
        check_contract(p)
        assert p["decision"] == "hold"
    assert "blank" in pages["blank.png"]["reasons"]
    assert pages["blank.png"]["ocr_confidence"] is None and pages["blank.png"]["text"] == ""
    assert "blurred" in pages["blurred.png"]["reasons"]
    # nothing passed, so no searchable PDF; the QA problem images are there
    assert not (out / "blank.pdf").exists() and not (out / "blurred.pdf").exists()
    assert (out / "blurred.page1.problems.png").is_file()


@pytest.mark.slow
def test_readable_table_without_json(khana_home, pages_dir, tmp_path):
    r = run_khana("process", str(pages_dir / "blank.png"), "--out", str(tmp_path / "o"))
    assert r.returncode == 3
    assert "hold" in r.stdout and "blank" in r.stdout
    assert "rescan" in r.stdout


@pytest.mark.slow
def test_multipage_tiff_and_pdf_inputs(khana_home, tmp_path):
    from PIL import Image

    from testpages import degrade, render_page

    a = render_page(n_words=40, seed=5, size_pt=14).image
    b = degrade.blank(seed=2)
    tiff = tmp_path / "two.tiff"
    Image.fromarray(a).save(tiff, save_all=True, append_images=[Image.fromarray(b)], dpi=(300, 300), compression="tiff_lzw")
    pdf = tmp_path / "one.pdf"
    Image.fromarray(a).save(pdf, resolution=300)
    out = tmp_path / "out"
    r = run_khana("process", str(tiff), str(pdf), "--out", str(out), "--json")
    assert r.returncode == 3, r.stderr
    pages = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(p["file"].rsplit("/", 1)[-1], p["page"]) for p in pages] == [("two.tiff", 1), ("two.tiff", 2), ("one.pdf", 1)]
    assert [p["decision"] for p in pages] == ["pass", "hold", "pass"]
    assert (out / "two.pdf").is_file() and (out / "one.pdf").is_file()


BAD = {
    "empty.png": b"",
    "notes.txt": "این یک فایل متنی است".encode(),
    "anim.gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
}


@pytest.mark.parametrize("name", [*BAD, "truncated.png", "missing.png"])
def test_bad_input_exits_2_with_clear_message_and_no_output(khana_home, pages_dir, tmp_path, name):
    bad = tmp_path / name
    if name == "truncated.png":
        data = (pages_dir / "clean.png").read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    elif name != "missing.png":
        bad.write_bytes(BAD[name])
    out = tmp_path / "out"
    # a good file next to the bad one: nothing at all is processed or written
    r = run_khana("process", str(pages_dir / "blank.png"), str(bad), "--out", str(out), "--json")
    assert r.returncode == 2
    assert r.stdout == ""
    assert name in r.stderr and "error" in r.stderr
    expected = {"empty.png": "empty", "notes.txt": "unsupported", "anim.gif": "unsupported",
                "truncated.png": "truncated", "missing.png": "no such file"}[name]
    assert expected in r.stderr
    assert not out.exists()


@pytest.mark.slow
def test_phone_photo_of_a_page_is_flattened_and_read(khana_home, tmp_path):
    from testpages import render_page
    from testpages.photo import phone_photo

    page = render_page(seed=8, size_pt=12, n_words=120)
    jpeg, _ = phone_photo(page.image)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg)
    r = run_khana("process", str(photo), "--out", str(tmp_path / "out"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    p = json.loads(r.stdout)
    check_contract(p)
    assert p["decision"] == "pass" and "photo_flattened" in p["warnings"]
    assert cer(page.text, p["text"]) <= 0.03


def test_missing_tesseract_is_one_line_and_the_installation_exit_code(khana_home, pages_dir, tmp_path):
    """A machine without Tesseract (PATH lacking it): one clear line, exit 4, nothing written, no traceback."""
    out = tmp_path / "out"
    r = run_khana("process", str(pages_dir / "clean.png"), "--out", str(out), env={"PATH": str(tmp_path / "empty")})
    assert r.returncode == 4, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Tesseract" in lines[0] and re.search("[\u0600-\u06ff]", lines[0])  # fa and en
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not out.exists()


def test_every_argument_is_checked_before_any_work(khana_home, pages_dir, tmp_path):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"an existing file")
    r = run_khana("process", str(pages_dir / "clean.png"), "--out", str(target))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not a folder" in r.stderr
    for bad in (tmp_path, "/dev/zero"):  # a folder, a device: each named for what it is, not "no such file"
        r = run_khana("process", str(bad), "--out", str(tmp_path / "o"))
        assert r.returncode == 2 and "no such file" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_output_names_are_unique_and_safe():
    from pathlib import Path

    from khana.cli import _output_stems

    names = _output_stems([Path("a/good.png"), Path("b/good.jpg"), Path("c/good.png"), Path("x\u202eevil\n.png"),
                           Path("س" * 130 + ".png")])
    assert len(set(names)) == 5
    assert names[0] != names[1] and names[0].startswith("good")
    assert all("\n" not in n and "\u202e" not in n for n in names)
    assert all(len((n + ".page999.problems.png").encode()) < 255 for n in names)


@pytest.mark.slow
def test_a_store_failure_while_later_files_are_stored_is_one_line_and_exit_6(khana_home, pages_dir, tmp_path,
                                                                            monkeypatch):
    """`khana process` stores its files in a thread while the worker reads the first ones: a store that fails
    on the third original is reported as on any other path (one line, exit 6 'unavailable', no traceback),
    after the pages already accepted are worked on; nothing hangs."""
    from conftest import run_khana_here

    from storage.objects import LocalObjectStore, StoreUnavailable

    real_put = LocalObjectStore.put
    originals = []

    def put(self, bucket, key, data, *a, **kw):
        if bucket == "originals":
            originals.append(key)
            if len(originals) == 3:
                raise StoreUnavailable("the disk is full (test)")
        return real_put(self, bucket, key, data, *a, **kw)

    monkeypatch.setattr(LocalObjectStore, "put", put)
    files = []
    for i in range(4):
        f = tmp_path / f"f{i}.png"
        f.write_bytes((pages_dir / "clean.png").read_bytes())
        files.append(str(f))
    r = run_khana_here("process", *files, "--out", str(tmp_path / "out"), "--json", env={"KHANA_WORKERS": "2"})
    assert r.returncode == 6, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "disk is full" in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.strip()]) <= 2
