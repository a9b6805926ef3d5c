"""Full-text search of forwarded filings, on the database's own full-text machinery.

What is indexed (when a batch is forwarded, `index_batch`, in the delivery's transaction):
* every active page's OCR text in search form (`ocr.search_text.index_text` over `ocr.search_form`: one spelling for ي/ی, ك/ک,
  hamza forms, diacritics, نیم‌فاصله, Persian/Arabic/Latin digits, case), with the
  separators kept inside numbers (1401/05/08) split into words, so that both databases'
  tokenizers see exactly the same plain words (`index_text`);
* the filing's case number as Latin digits only (`case_key`), for "with or without separators".

Two backends behind one interface (`SearchIndex`), chosen by the database dialect:
* SQLite (embedded default): the FTS5 table `search_fts` (external content over
  `search_pages.body`, tokenizer `unicode61 remove_diacritics 2`, kept in step by triggers),
  ranked with `bm25()`.
* PostgreSQL: the generated column `search_pages.tsv = to_tsvector('simple', body)` with a
  GIN index, ranked with `ts_rank`.
Both are created by migration 0003.

A query is normalised the same way; every word must occur (AND); words of three or more
letters also match with a Persian suffix (پرونده finds پرونده‌ها, پرونده‌ای; `ocr.search_text.SUFFIXES`), each
form an exact index lookup (cheap), not an open prefix. A query
made only of digits and separators also looks the case numbers up (exact or prefix).
`highlight` marks the hit words in the page's display text (HTML-escaped, `<mark>`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Protocol, Sequence

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from storage.models import SearchBatch, SearchPage


class Term(Protocol):
    """A normalised query word (`ocr.search_text.Term`) and the exact index words it matches."""

    text: str
    forms: tuple[str, ...]

# A query matching more pages than this in one court ranks the newest CANDIDATES of them: the
# cost of a search stays bounded however common its words and however large the archive.
CANDIDATES = 500


def court_token(court: str) -> str:
    """One plain token naming a court inside the full-text index (both tokenizers keep it whole)."""
    return "court" + hashlib.sha1(court.encode("utf-8")).hexdigest()[:20]


@dataclass
class BatchHit:
    batch_id: str
    score: float  # higher is better; case-number matches come first
    case_match: bool = False
    pages: list[int] = field(default_factory=list)  # best-matching pages (batch sequence numbers), best first
    page_ids: list[str] = field(default_factory=list)


class SearchIndex:
    """Index and query forwarded filings; the dialect-specific parts are in the subclasses."""

    dialect = ""

    # --- writing ------------------------------------------------------------------
    def index_batch(self, s: Session, batch_id: str, court: str, case_key: str,
                    pages: Iterable[tuple[str, int, str]]) -> int:
        """(Re)index one filing: `case_key` its case number as digits, `pages` (page id, batch sequence number,
        body in indexed form: `ocr.search_text.index_text`). Returns pages indexed."""
        self.remove_batch(s, batch_id)
        s.add(SearchBatch(batch_id=batch_id, court=court, case_key=case_key))
        n = 0
        for page_id, seq, body in pages:
            s.add(SearchPage(page_id=page_id, batch_id=batch_id, court=court, court_token=court_token(court), seq=seq,
                             body=body))
            n += 1
        s.flush()
        return n

    def remove_batch(self, s: Session, batch_id: str) -> None:
        s.execute(delete(SearchPage).where(SearchPage.batch_id == batch_id))
        s.execute(delete(SearchBatch).where(SearchBatch.batch_id == batch_id))

    # --- reading ------------------------------------------------------------------
    def search(self, s: Session, court: str | None, terms: Sequence[Term], case_key: str = "",
               limit: int = 50) -> list[BatchHit]:
        """The court's filings matching the normalised query (`terms`, and `case_key`: digits of a case number
        or a prefix of one, "" for none), best first, each with its best-matching page.

        `court` None searches every court (only for the first-try mode on one machine)."""
        hits: dict[str, BatchHit] = {}
        key = case_key
        if key:
            rows = s.execute(text(
                "SELECT batch_id, case_key FROM search_batches WHERE "
                + ("court = :court AND " if court is not None else "")
                + "case_key >= :lo AND case_key < :hi ORDER BY case_key LIMIT :limit"),
                {"court": court, "lo": key, "hi": key + ":", "limit": limit}).all()
            for batch_id, found in rows:
                hits[batch_id] = BatchHit(batch_id, 2e9 if found == key else 1e9, case_match=True)
        if terms:
            for batch_id, score, seq, page_id in self._text_hits(s, court, terms, limit):
                h = hits.setdefault(batch_id, BatchHit(batch_id, 0.0))
                h.score += score
                h.pages.append(seq)
                h.page_ids.append(page_id)
        return sorted(hits.values(), key=lambda h: h.score, reverse=True)[:limit]

    def _text_hits(self, s: Session, court: str | None, terms: Sequence[Term], limit: int) -> list[tuple[str, float, int, str]]:
        """(batch id, score (higher is better), best page's seq, best page's id), best first."""
        raise NotImplementedError

    def count_pages(self, s: Session) -> int:
        return s.execute(text("SELECT count(*) FROM search_pages")).scalar_one()


class SqliteFtsIndex(SearchIndex):
    dialect = "sqlite"

    @staticmethod
    def match_expr(court: str | None, terms: Sequence[Term]) -> str:
        # each form a quoted FTS5 string (tokens are letters/digits only), a word's forms OR'ed;
        # the court's token narrows the match inside the index itself
        words = " AND ".join("(" + " OR ".join(f'"{f}"' for f in t.forms) + ")" for t in terms)
        if court is None:
            return f"body : ({words})"
        return f'court_token : "{court_token(court)}" AND body : ({words})'

    def _text_hits(self, s, court, terms, limit):
        # the newest CANDIDATES matching pages are ranked (bm25 on the body only); with SQLite's
        # bare-column rule, seq and page_id come from each filing's best page
        rows = s.execute(text(
            "WITH f AS MATERIALIZED (SELECT rowid AS id, bm25(search_fts, 1.0, 0.0) AS rank FROM search_fts "
            "WHERE search_fts MATCH :q ORDER BY rowid DESC LIMIT :cap) "
            "SELECT p.batch_id, min(f.rank) AS score, p.seq, p.page_id FROM f JOIN search_pages AS p ON p.id = f.id "
            + ("WHERE p.court = :court " if court is not None else "")
            + "GROUP BY p.batch_id ORDER BY score LIMIT :limit"),
            {"q": self.match_expr(court, terms), "court": court, "limit": limit, "cap": CANDIDATES}).all()
        return [(b, -float(score), seq, pid) for b, score, seq, pid in rows]  # bm25: more negative is better


class PostgresFtsIndex(SearchIndex):
    dialect = "postgresql"

    @staticmethod
    def tsquery(court: str | None, terms: Sequence[Term]) -> str:
        court_part = [f"'{court_token(court)}'"] if court is not None else []
        return " & ".join(court_part + ["(" + " | ".join(f"'{f}'" for f in t.forms) + ")" for t in terms])

    def _text_hits(self, s, court, terms, limit):
        rows = s.execute(text(
            "WITH c AS MATERIALIZED (SELECT id FROM search_pages WHERE tsv @@ to_tsquery('simple', :q) "
            + ("AND court = :court " if court is not None else "")
            + "ORDER BY id DESC LIMIT :cap), "
            "r AS (SELECT DISTINCT ON (p.batch_id) p.batch_id, ts_rank(p.tsv, to_tsquery('simple', :q)) AS score, "
            "p.seq, p.page_id FROM c JOIN search_pages AS p ON p.id = c.id ORDER BY p.batch_id, score DESC) "
            "SELECT batch_id, score, seq, page_id FROM r ORDER BY score DESC LIMIT :limit"),
            {"q": self.tsquery(court, terms), "court": court, "limit": limit, "cap": CANDIDATES}).all()
        return [(b, float(score), seq, pid) for b, score, seq, pid in rows]


def search_index(s_or_engine) -> SearchIndex:
    """The backend for a session's (or engine's) database."""
    bind = s_or_engine.get_bind() if isinstance(s_or_engine, Session) else s_or_engine
    name = bind.dialect.name
    if name == "sqlite":
        return SqliteFtsIndex()
    if name == "postgresql":
        return PostgresFtsIndex()
    raise ValueError(f"full-text search is not available on {name} (SQLite or PostgreSQL)")


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic autogenerate filter: the full-text machinery is made by hand in migration 0003
    (FTS5 virtual and shadow tables, the generated tsvector column), not from the models."""
    if type_ == "table" and name and name.startswith("search_fts"):
        return False
    if type_ == "column" and name == "tsv" and reflected and compare_to is None:
        return False
    if type_ == "index" and name == "ix_search_pages_tsv":
        return False
    return True


