"""Persian OCR for Khana: Tesseract `fas` words, normalisation, confidence measures,
identifier extraction and searchable-PDF assembly. Pure functions plus Tesseract
subprocess calls; no storage or database code.

Modules: `engine` (the `OcrEngine` boundary and `TesseractEngine`), `tesseract` (the
process), `tsv`, `words` (Word, OcrResult), `layout`, `text_repair`, `normalize`,
`measures`, `fields`, `lexicon`, `pdf`."""
from ocr.engine import (
    DEFAULT_PSM,
    LanguageDataMissing,
    OcrEngine,
    OcrError,
    OcrResult,
    OcrTimeout,
    TesseractEngine,
    TesseractNotFound,
    Word,
    available_languages,
    recognise,
)
from ocr.fields import Field, case_number_mismatch, extract_fields, field_boxes
from ocr.measures import OcrMeasures, is_garbage, ocr_measures
from ocr.normalize import display_form, search_form
from ocr.pdf import EncodedImage, PdfPage, build_searchable_pdf, encode_page_image

__all__ = [
    "DEFAULT_PSM",
    "LanguageDataMissing",
    "OcrEngine",
    "Field",
    "OcrError",
    "OcrMeasures",
    "OcrResult",
    "OcrTimeout",
    "PdfPage",
    "TesseractEngine",
    "TesseractNotFound",
    "EncodedImage",
    "encode_page_image",
    "Word",
    "available_languages",
    "build_searchable_pdf",
    "case_number_mismatch",
    "display_form",
    "extract_fields",
    "field_boxes",
    "is_garbage",
    "ocr_measures",
    "recognise",
    "search_form",
]
