"""Build ocr/data/fa_lexicon.txt.xz from Debian's myspell-fa (hunspell) dictionary.

    .venv/bin/python -m ocr.build_lexicon [/usr/share/hunspell/fa_IR.dic]

Every entry is put in search form (ocr.normalize.search_form: no ZWNJ, Persian
yeh/kaf, no diacritics). Entries that are another entry plus a suffix in
ocr.lexicon.SUFFIXES are dropped (the lookup strips suffixes), which shrinks the
list several-fold; the rest is sorted and xz-compressed.
"""
from __future__ import annotations

import lzma
import sys
from pathlib import Path

from ocr.lexicon import DATA, _candidates
from ocr.normalize import search_form

DEFAULT_DIC = "/usr/share/hunspell/fa_IR.dic"

# common words the 2007 myspell list lacks (numbers, judicial and e-services vocabulary)
EXTRA_WORDS = """
یک دو سه چهار پنج شش هفت هشت نه ده یازده دوازده بیست سی چهل پنجاه شصت هفتاد هشتاد نود صد
دویست سیصد چهارصد پانصد هزار میلیون میلیارد اول دوم سوم چهارم پنجم
دادنامه دادخواست شکوائیه شکواییه خواهان خوانده خواندگان خواهانها شاکی مشتکی‌عنه متهم وکیل وکالت‌نامه
دادگاه دادگستری دادسرا شعبه بایگانی پرونده کلاسه رهگیری پیگیری ابلاغ ابلاغیه اجرائیه اجراییه رسیدگی
تجدیدنظر تجدیدنظرخواهی واخواهی فرجام‌خواهی قرار رأی رای حکم محکوم محکومیت مطالبه وجه خسارت دادرسی
تأخیر تادیه تأدیه سامانه ثنا الکترونیک قضایی قوه قضاییه دفتر دفاتر خدمات کد ملی شناسه تاریخ شماره
موضوع خواسته بهای منضم ضمائم ضمایم مستندات پیوست امضا اثر انگشت مهر نشانی کدپستی تلفن همراه
استان شهرستان بخش حوزه قضایی ریاست رئیس رییس مدیر دفتر دادیار بازپرس دادستان قاضی مستشار
""".replace("\u200c", "")


def build(dic: str = DEFAULT_DIC, out: Path = DATA) -> tuple[int, int, int]:
    lines = Path(dic).read_text(encoding="utf-8", errors="replace").splitlines()
    words = set()
    for line in lines[1:]:
        w = search_form(line.split("/", 1)[0]).replace(" ", "")
        if w and any("\u0600" <= c <= "\u06ff" for c in w):
            words.add(w)
    words |= {search_form(w) for w in EXTRA_WORDS.split()}
    # shortest first: a word is dropped only when the lookup (suffix/prefix stripping
    # against what is already kept) accepts it, so every dictionary word stays accepted
    kept: set[str] = set()
    for w in sorted(words, key=lambda x: (len(x), x)):
        if not any(c in kept for c in _candidates(w)):
            kept.add(w)
    data = "\n".join(sorted(kept)).encode("utf-8")
    blob = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    return len(words), len(kept), len(blob)


if __name__ == "__main__":
    total, kept, size = build(*(sys.argv[1:2] or [DEFAULT_DIC]))
    print(f"{total} distinct search forms, {kept} kept after suffix folding, {size} bytes -> {DATA}")
