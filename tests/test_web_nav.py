"""The navigation marks exactly one link as the current page."""
from api.web import nav_current

QA = [("/qa", "Review queue"), ("/qa/stats", "Statistics")]
STATION = [("/station", "Upload"), ("/station/filings", "Filings")]


def test_the_longest_matching_link_is_current():
    assert nav_current(QA, "/qa/stats") == "/qa/stats"  # not the review queue as well
    assert nav_current(QA, "/qa") == "/qa"
    assert nav_current(QA, "/qa/5f0c/pages/2") == "/qa"  # a page under review belongs to the queue


def test_the_station_home_is_matched_exactly():
    assert nav_current(STATION, "/station") == "/station"
    assert nav_current(STATION, "/station/filings") == "/station/filings"
    assert nav_current(STATION, "/court") is None
