"""Reason codes (binding vocabulary from design.md) with Persian and English messages."""
from __future__ import annotations

REASONS: dict[str, dict[str, str]] = {
    "blank": {
        "en": "The page is blank (no text found).",
        "fa": "صفحه خالی است و متنی در آن دیده نمی‌شود.",
    },
    "cut_off": {
        "en": "Part of the page is cut off: text runs off an edge or is covered by a dark scanner border.",
        "fa": "بخشی از صفحه بریده شده است: متن از لبه بیرون رفته یا زیر حاشیه سیاه اسکنر مانده است.",
    },
    "blurred": {
        "en": "The scan is blurred; letters are not sharp enough to read.",
        "fa": "تصویر تار است و حروف به‌اندازه کافی واضح نیستند.",
    },
    "noisy": {
        "en": "The scan is noisy (speckles or grain cover the text).",
        "fa": "تصویر نویز دارد (لکه‌ها یا دانه‌ها روی متن را پوشانده‌اند).",
    },
    "too_dark": {
        "en": "The scan is too dark; text cannot be told apart from the paper.",
        "fa": "تصویر بیش از حد تیره است و متن از زمینه کاغذ قابل تشخیص نیست.",
    },
    "faded": {
        "en": "The text is too faint (faded or low-contrast scan).",
        "fa": "متن بیش از حد کم‌رنگ است (اسکن کم‌کنتراست یا رنگ‌پریده).",
    },
    "low_resolution": {
        "en": "The scan resolution is too low for the text size; rescan at 300 dpi.",
        "fa": "وضوح اسکن برای اندازه متن کافی نیست؛ لطفاً با ۳۰۰ نقطه در اینچ دوباره اسکن کنید.",
    },
    "uneven_lighting": {
        "en": "Uneven lighting: a shadow or dark area hides part of the text.",
        "fa": "نور صفحه یکنواخت نیست: سایه یا ناحیه تیره بخشی از متن را پوشانده است.",
    },
    "skew_unrecoverable": {
        "en": "The page is so skewed or disordered that its text lines could not be straightened.",
        "fa": "صفحه چنان کج یا نامرتب است که خطوط متن قابل صاف‌کردن نبود.",
    },
    "low_ocr_confidence": {
        "en": "Text recognition is unreliable on this page (low OCR confidence).",
        "fa": "بازشناسی متن در این صفحه قابل اعتماد نیست (اطمینان پایین OCR).",
    },
    "unreadable_file": {
        "en": "The file could not be read as an image or PDF page.",
        "fa": "فایل به‌صورت تصویر یا صفحه PDF قابل خواندن نیست.",
    },
    "ocr_timeout": {
        "en": "Text recognition took too long on this page and was stopped.",
        "fa": "بازشناسی متن این صفحه بیش از حد طول کشید و متوقف شد.",
    },
    # Added by Khana (the design allows new codes): the page could not be processed
    # because of an internal error; it is held for QA instead of being dropped.
    "processing_error": {
        "en": "Khana could not process this page (internal error); QA has been asked to look at it.",
        "fa": "پردازش این صفحه با خطای داخلی متوقف شد؛ صفحه برای بررسی به کارشناس کنترل کیفیت ارجاع شد.",
    },
    "processing_timeout": {
        "en": "Processing this page used more computing time than allowed and was stopped; QA has been asked to look at it.",
        "fa": "پردازش این صفحه بیش از زمان مجاز طول کشید و متوقف شد؛ صفحه برای بررسی به کارشناس کنترل کیفیت ارجاع شد.",
    },
}


def reason_message(code: str, lang: str = "en") -> str:
    """Message for a reason code in `lang` ("fa" or "en"); unknown codes are returned as-is."""
    entry = REASONS.get(code)
    if entry is None:
        return code
    return entry.get(lang) or entry["en"]
