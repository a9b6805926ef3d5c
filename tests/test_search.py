"""Full-text search of forwarded filings on both databases: SQLite FTS5 (embedded) and PostgreSQL.

Filings are recorded and forwarded rows in a real migrated database, indexed with the
same call the delivery makes (`pipeline.court.index_filing`), and searched as a clerk would.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from pipeline import court as court_mod
from storage.database import Database
from storage.models import AuditEvent, Batch, Delivery, OriginalFile, Page, new_id
from ocr.search_text import case_key, highlight, index_text, query_terms
from storage.search import search_index

ZWNJ = "\u200c"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def db(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'k.db'}"
        database = Database(url)
        database.migrate()
        yield database
        database.dispose()
    else:
        from fixtures_services import drop_postgres_db, make_postgres_db

        server = request.getfixturevalue("postgres_server_url")
        url = make_postgres_db(server, prefix="khana_search")
        database = Database(url)
        database.migrate()
        try:
            yield database
        finally:
            database.dispose()
            drop_postgres_db(url)


_T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def forward(db: Database, court: str, texts: list[str], *, case_number: str | None = None, office: str = "office-1",
            deadline: date | None = None, minutes: int = 0, document_type: str = "petition") -> str:
    """Record a forwarded filing with these page texts and index it as the delivery does."""
    bid = new_id()
    with db.session() as s:
        b = Batch(id=bid, office=office, court=court, case_number=case_number, document_type=document_type,
                  deadline=deadline, status="forwarded")
        s.add(b)
        f = OriginalFile(id=new_id(), batch_id=bid, position=1, name="p.png", kind="png", object_key=f"{bid}/p",
                         sha256="0" * 64, size=1, page_count=len(texts))
        s.add(f)
        s.flush()
        pages = []
        for i, t in enumerate(texts, start=1):
            p = Page(id=new_id(), batch_id=bid, file_id=f.id, file_page=i, seq=i, status="decided", decision="pass", text=t)
            s.add(p)
            pages.append(p)
        s.add(Delivery(batch_id=bid, court=court, manifest_key=f"{court}/{bid}/manifest.json", manifest_sha256="0" * 64,
                       delivered_at=_T0 + timedelta(minutes=minutes)))
        s.flush()
        court_mod.index_filing(s, b, pages)
    return bid


PETITION = ("ریاست محترم دادگاه عمومی حقوقی تهران. با سلام، احتراماً اینجانب خواهان دادخواست تجدیدنظر "
            "نسبت به دادنامه شماره ۱۴۰۲۰۹۹۸۷۶۵۴۳۲۱ مورخ ۱۴۰۲/۰۵/۰۸ را تقدیم می‌کنم و درخواست رسیدگی دارم.")
OTHER = "گزارش همایش سراسری دیوان عالی کشور درباره عملکرد دفاتر خدمات الکترونیک قضایی در اسکن اسناد."


def ids(found) -> list[str]:
    return [f.batch for f in found]


def test_index_text_and_terms():
    assert index_text("پرونده" + ZWNJ + "های كيفي ۱۴۰۲/۰۵/۰۸") == "پروندههای کیفی 1402 05 08"
    assert case_key("۱۴۰۲-۰۹۹۸ / ۷۶۵") == "14020998765"
    terms = query_terms("دادگاه به  دادگاه ۱۲۳")
    assert [t.text for t in terms] == ["دادگاه", "به", "123"]
    assert "دادگاهها" in terms[0].forms and "دادگاهی" in terms[0].forms
    assert terms[1].forms == ("به",) and terms[2].forms == ("123",)


def test_spelling_variants_find_the_same_words(db):
    a = forward(db, "court-a", [OTHER, PETITION], case_number="140209987654321")
    forward(db, "court-a", [OTHER])
    for q in ["تجدیدنظر", "تجديدنظر",  # Persian / Arabic yeh
              "تقدیم میکنم", "تقديم مي" + ZWNJ + "كنم",  # with and without نیم‌فاصله, Arabic kaf and yeh
              "احتراما", "اِحتراماً",  # tanwin, kasra
              "۱۴۰۲/۰۵/۰۸", "1402-05-08",  # Persian / Latin digits, any separator
              "دادگاه حقوقی"]:
        assert ids(court_mod.search(db, "court-a", q)) == [a], q


def test_suffixed_forms_match_and_every_word_must_occur(db):
    a = forward(db, "court-a", ["پرونده" + ZWNJ + "های کیفری این شعبه"])
    assert ids(court_mod.search(db, "court-a", "پرونده")) == [a]
    assert ids(court_mod.search(db, "court-a", "پرون")) == []  # not an open prefix
    assert ids(court_mod.search(db, "court-a", "پرونده حقوقی")) == []
    assert court_mod.search(db, "court-a", " .،؟ ") == []


def test_case_number_with_or_without_separators(db):
    a = forward(db, "court-a", [OTHER], case_number="۱۴۰۲-۰۹۹۸-۷۶۵۴۳۲۱")
    b = forward(db, "court-a", [OTHER], case_number="140209987654322")
    forward(db, "court-a", [OTHER], case_number="990101")
    for q in ["140209987654321", "۱۴۰۲۰۹۹۸۷۶۵۴۳۲۱", "1402/0998/7654321", "۱۴۰۲-۰۹۹۸-۷۶۵۴۳۲۱", " 1402 0998 7654321 "]:
        assert ids(court_mod.search(db, "court-a", q))[0] == a, q
    found = court_mod.search(db, "court-a", "1402 0998")  # a prefix finds both, in case-number order
    assert set(ids(found)) == {a, b} and all(f.case_match for f in found)


def test_a_clerk_finds_nothing_of_another_court(db):
    mine = forward(db, "court-a", [PETITION], case_number="140209987654321")
    theirs = forward(db, "court-b", [PETITION], case_number="140209987654321")
    assert ids(court_mod.search(db, "court-a", "تجدیدنظر")) == [mine]
    assert ids(court_mod.search(db, "court-b", "140209987654321")) == [theirs]
    assert ids(court_mod.search(db, "court-c", "تجدیدنظر")) == []
    assert court_mod.inbox(db, "court-c") == []
    with pytest.raises(court_mod.NotFound):
        court_mod.filing(db, "court-a", theirs)


def test_ranked_by_relevance(db):
    once = forward(db, "court-a", [OTHER + " پرونده " + OTHER], minutes=2)
    often = forward(db, "court-a", ["پرونده پرونده پرونده در اجرای پرونده"], minutes=1)
    assert ids(court_mod.search(db, "court-a", "پرونده")) == [often, once]


def test_snippet_marks_hit_words_and_escapes_markup(db):
    forward(db, "court-a", [OTHER, "متن <script>alert(1)</script> خواهان دادخواست داد & رفت"])
    [hit] = court_mod.search(db, "court-a", "خواهان")
    assert hit.snippets[0].page == 2
    html_ = hit.snippets[0].html
    assert "<mark>خواهان</mark>" in html_
    assert "<script>" not in html_ and "&lt;script&gt;" in html_ and "&amp;" in html_


def test_highlight_marks_every_spelling():
    terms = query_terms("كتاب")
    out = highlight("این کتاب" + ZWNJ + "ها و كتاب و کتابخانه و دفتر", terms)
    assert out == "این <mark>کتاب" + ZWNJ + "ها</mark> و <mark>كتاب</mark> و کتابخانه و دفتر"


def test_reindex_backfills_existing_filings(db):
    a = forward(db, "court-a", [PETITION])
    with db.session() as s:
        s.execute(text("DELETE FROM search_pages"))
        s.execute(text("DELETE FROM search_batches"))
    assert court_mod.search(db, "court-a", "تجدیدنظر") == []
    assert court_mod.reindex(db) == (1, 1)
    assert ids(court_mod.search(db, "court-a", "تجدیدنظر")) == [a]
    assert court_mod.reindex(db) == (1, 1)  # idempotent: a filing is replaced, never duplicated
    with db.session() as s:
        assert search_index(s).count_pages(s) == 1


def test_inbox_newest_first_or_most_urgent_first(db):
    old = forward(db, "court-a", [OTHER], minutes=1)
    urgent = forward(db, "court-a", [OTHER], minutes=2, deadline=date(2026, 12, 3))
    new = forward(db, "court-a", [OTHER, OTHER], minutes=3)
    later = forward(db, "court-a", [OTHER], minutes=0, deadline=date(2026, 12, 20))
    assert ids(court_mod.inbox(db, "court-a")) == [new, urgent, old, later]
    assert ids(court_mod.inbox(db, "court-a", order="urgent")) == [urgent, later, new, old]
    f = court_mod.inbox(db, "court-a")[0]
    assert (f.pages, f.office, f.document_type) == (2, "office-1", "petition")
    assert court_mod.count(db, "court-a") == 4


def test_search_and_viewing_are_audited(db):
    a = forward(db, "court-a", [PETITION])
    court_mod.search(db, "court-a", "تجدیدنظر", actor="clerk:ali")
    court_mod.filing(db, "court-a", a, actor="clerk:ali")
    with db.session() as s:
        events = [(e.actor, e.action, e.batch_id) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert ("clerk:ali", "court_search", None) in events
    assert ("clerk:ali", "court_filing_viewed", a) in events


def test_search_reindex_command(tmp_path):
    """`khana search-reindex` backfills filings forwarded before the index existed."""
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'k.db'}"
    database = Database(url)
    database.migrate()
    a = forward(database, "court-a", [PETITION])
    with database.session() as s:
        s.execute(text("DELETE FROM search_pages"))
        s.execute(text("DELETE FROM search_batches"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KHANA_")}
    env["KHANA_DATABASE_URL"] = url
    r = subprocess.run([sys.executable, "-m", "khana.cli", "search-reindex", "--missing"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "indexed 1 filing(s), 1 page(s)" in r.stdout
    assert ids(court_mod.search(database, "court-a", "تجدیدنظر")) == [a]
    database.dispose()


def test_first_try_mode_searches_every_court(db):
    """court=None (only for the first-try mode on one machine) sees every court's filings."""
    a = forward(db, "court-a", [PETITION], case_number="140209987654321")
    b = forward(db, "court-b", [PETITION], case_number="140209987654322")
    assert set(ids(court_mod.search(db, None, "تجدیدنظر"))) == {a, b}
    assert set(ids(court_mod.search(db, None, "1402099876543"))) == {a, b}
    assert set(ids(court_mod.inbox(db, None))) == {a, b}
