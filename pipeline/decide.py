"""The page decision as pure functions: images and measures in, a report and evidence out.

No database, no object store: `pipeline.stages` reads a page's inputs, calls these, and persists what
they return. Tests can exercise the whole decision without either.

* `assess_image`: decoded scan -> flattened photo -> orientation, deskew, illumination correction ->
  legibility measures -> early gate (hopeless pages are held without OCR) -> QA overlay for those.
* `assess_read`: the corrected image and one OCR read (or a timeout) -> OCR evidence (confidences,
  lexicon, dropped lines, unread text tiles) -> final gate -> final legibility, fields, warnings,
  the QA overlay of a held page and the page image encoded for the searchable PDF.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

import ocr
import quality
from quality.gate import GatePolicy, OcrEvidence
from quality.page_frame import photo_dpi, rectify_page


# Early holds that still leave text worth reading: the page is held at once (the station learns it while
# the client is at the counter) and then read, so that QA sees its text and case number and an override
# puts it in the searchable PDF with a text layer. Any other early reason means nothing readable.
READ_ANYWAY = frozenset({"cut_off", "skew_unrecoverable", "low_resolution"})


@dataclass
class ImageAssessment:
    """What the quality stage learns from the scan alone."""

    corrected: quality.CorrectedPage
    measures: quality.PageMeasures
    scan_dpi: float  # resolution of the scan (or of the flattened photo)
    image_legibility: float  # the legibility score from pixels alone
    early_reasons: list[str]  # non-empty: held without OCR
    warnings: list[str] = field(default_factory=list)
    overlay: np.ndarray | None = None  # the QA image of a page held early

    @property
    def hopeless(self) -> bool:
        """Held early with nothing worth reading (blank, hopelessly blurred, noisy or dark)."""
        return bool(self.early_reasons) and not set(self.early_reasons) <= READ_ANYWAY

    @property
    def image_dpi(self) -> float:
        """Resolution of the corrected image: the scan's dpi times any upscaling of small text."""
        return self.scan_dpi * float(self.corrected.upscale or 1.0)

    def measures_record(self) -> dict:
        """The measures as stored with the page (JSON), with the resolutions and the image score."""
        d = self.measures.as_dict()
        d["dpi"] = float(self.scan_dpi)
        d["image_dpi"] = float(self.image_dpi)
        d["image_legibility"] = float(self.image_legibility)  # after OCR the report's `legibility` is the final score
        return d


def assess_image(image: np.ndarray, dpi: float, policy: GatePolicy) -> ImageAssessment:
    """Correct and measure one decoded page and apply the early gate."""
    frame = rectify_page(image)  # a photo of a sheet on a table -> a flat page
    raw, scan_dpi = (frame.image, photo_dpi(frame.image)) if frame.found else (image, dpi)
    corrected = quality.correct_page(raw)
    measures = quality.measure_page(raw, corrected, scan_dpi)
    legibility = float(quality.legibility_score(measures))
    early = list(quality.early_gate(measures, policy))
    overlay = (quality.annotate_problems(corrected.image, measures, early, [], policy.reasons.blur_rel_max,
                                         legibility=legibility) if early else None)
    return ImageAssessment(corrected, measures, float(scan_dpi), legibility, early,
                           ["photo_flattened"] if frame.found else [], overlay)


def measures_from_record(d: dict) -> quality.PageMeasures:
    """The measures of a page back from their stored record (extra keys such as `dpi` are not measures)."""
    names = {f.name for f in dataclasses.fields(quality.PageMeasures)}
    return quality.PageMeasures(**{k: v for k, v in d.items() if k in names})


def image_dpi(record: dict, default: float) -> float:
    """Resolution of a stored page's corrected image (see `ImageAssessment.image_dpi`)."""
    return float(record.get("image_dpi") or record.get("dpi") or default)


@dataclass
class ReadAssessment:
    """What the OCR stage decides from the corrected image and its reading."""

    reasons: list[str]
    legibility: float | None  # the final score; None when OCR timed out (the image score stands)
    text: str = ""
    ocr_confidence: float | None = None
    fields: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    words: list[ocr.Word] = field(default_factory=list)
    overlay: np.ndarray | None = None
    evidence: OcrEvidence | None = None


def ocr_evidence(image: np.ndarray, result: ocr.OcrResult, measures: quality.PageMeasures,
                 policy: GatePolicy) -> OcrEvidence:
    """The final gate's evidence from one read; marks blurred tiles on `measures` for the QA image."""
    blur_limit = policy.reasons.blur_rel_max
    unread = quality.unread_text(image, result.words, measures, blur_limit)
    ev = OcrEvidence(**ocr.ocr_measures(result).as_dict(), words=result.words,
                     unread_text_share=float(unread["unread_share"]), unread_tiles=int(unread["unread_tiles"]),
                     unread_blurred_tiles=len(unread["blurred_boxes"]), text_tiles=int(unread["text_tiles"]))
    if unread["blurred_boxes"]:  # mark every blurred text tile on the QA image, read or not
        measures.blur_regions = quality.blurred_regions(image, measures, blur_limit) or unread["blurred_boxes"]
    return ev


def judge_handwriting(image: np.ndarray, measures: quality.PageMeasures, result: ocr.OcrResult,
                      ev: OcrEvidence, reasons: list[str], policy: GatePolicy):
    """Handwriting on a page that was read (issue 12, class 8): None when there is none.

    * a handwritten page (uneven baselines): judged by its image alone (`handwritten_gate`); its reading
      keeps only the words OCR is confident of (the PDF's text layer, the report's text);
    * a printed page held for its reading, whose unread or badly read ink is handwriting (a signature,
      filled-in fields): judged again without those parts.
    Returns (reasons, reading, whole page handwritten)."""
    from quality.handwriting import hand_parts, handwriting_evidence, handwritten_gate

    if (not reasons and not ev.unread_tiles and ev.mean_confidence is not None
            and ev.mean_confidence >= policy.handwriting.look_below_confidence):
        return None  # read well all over, nothing unread: print (the measure costs ~0.4 CPU-s a page)
    # the blurred parts of a page held for them do not count: blurred, grainy print jitters like a hand
    hw = handwriting_evidence(image, exclude=measures.blur_regions if "blurred" in reasons else ())
    if hw.handwritten:
        floor = policy.handwriting.text_min_confidence
        sure = [w for w in result.words if w.conf >= floor]
        return handwritten_gate(measures, policy), _reading(result, sure), True
    held = "low_ocr_confidence" in reasons
    floor = policy.final.low_word_confidence
    if not held and not reasons and not ev.unread_tiles:
        return None  # no text left unread: no part of the page is handwriting Tesseract could not read
    if not held and reasons:
        return None
    if held and ("blurred" in reasons or (2 * ev.unread_blurred_tiles >= max(ev.unread_tiles, 1) and ev.unread_tiles)):
        return None  # the unread or misread part is blurred: a fault of the scan, not handwriting
    up = float(measures.effective_resolution / measures.char_height_px) if measures.char_height_px > 0 else 1.0
    parts = hand_parts(image, result.words, text_height_px=hw.text_height_px or measures.effective_resolution,
                       page_blur_px=float(measures.blur_sigma_px) * max(up, 1.0),
                       min_conf=floor, blur_max=policy.handwriting.part_blur_max)
    if not parts:
        return None
    if not held:  # passes as it is: the warning tells QA it bears handwriting (a signature, filled-in fields)
        return reasons, result, False

    def inside(w) -> bool:
        cx, cy = w.left + w.width / 2.0, w.top + w.height / 2.0
        return any(x <= cx <= x + bw and y <= cy <= y + bh for x, y, bw, bh in parts)

    rest = image.copy()
    for x, y, bw, bh in parts:  # the print without its handwritten parts
        rest[y:y + bh, x:x + bw] = 255
    printed = _reading(result, [w for w in result.words if not inside(w)])
    again = list(quality.final_gate(measures, ocr_evidence(rest, printed, measures, policy), policy))
    if "low_ocr_confidence" in again:
        return None
    return again, _reading(result, [w for w in result.words if not inside(w) or w.conf >= policy.handwriting.text_min_confidence]), False


def _reading(result: ocr.OcrResult, words: list) -> ocr.OcrResult:
    """`result` with only `words` (its text rebuilt from them as the engine builds it)."""
    from ocr.words import words_to_text

    confs = [w.conf for w in words]
    text = words_to_text(list(words))
    return dataclasses.replace(result, words=list(words), text=text, raw_text=text,
                               mean_confidence=float(np.mean(confs)) if confs else None)


def assess_read(image: np.ndarray, measures: quality.PageMeasures, result: ocr.OcrResult | None,
                policy: GatePolicy, *, image_legibility: float, declared_case: str | None = None,
                warnings: list[str] | None = None) -> ReadAssessment:
    """The final decision of a page from its reading (`result` None: OCR timed out)."""
    warnings = list(warnings or [])
    if result is None:
        out = ReadAssessment(reasons=["ocr_timeout"], legibility=None, warnings=warnings)
    else:
        ev = ocr_evidence(image, result, measures, policy)
        reasons = list(quality.final_gate(measures, ev, policy))
        if "low_ocr_confidence" in reasons and "blurred" not in reasons:
            # held on its read: is a part of the page blurred (read as garbage, so not unread)? ~0.2 s, held pages only
            boxes = quality.blurred_regions(image, measures, policy.reasons.blur_rel_max)
            ev.blurred_text_tiles = len(boxes)
            reasons = list(quality.final_gate(measures, ev, policy))
            if "blurred" in reasons:
                measures.blur_regions = boxes
        read_confidence = result.mean_confidence  # of the whole reading, also when only sure words are kept
        hand = judge_handwriting(image, measures, result, ev, reasons, policy)
        # legibility after OCR: how well this very read went (share of the text read included), marked by
        # the image score (quality/final_score.py)
        legibility = quality.final_legibility(image_legibility, ev, measures)
        if hand is not None:
            reasons, result, whole_page = hand
            warnings.append("handwritten")
            if whole_page:  # a handwritten page is judged by its image: so is its score
                legibility = image_legibility if not reasons else min(legibility, image_legibility)
        if not reasons:  # image faults the correction undid, shown by a good read: passed with a warning
            warnings.extend(w for w in quality.read_warnings(measures, ev, policy) if w not in warnings)
        fields = ocr.extract_fields(result.text)
        if ocr.case_number_mismatch(fields, declared_case):
            warnings.append("case_number_mismatch")
        out = ReadAssessment(
            reasons=reasons, legibility=float(legibility), text=result.text,
            ocr_confidence=None if read_confidence is None else float(read_confidence),
            fields=[f.as_dict() for f in fields], warnings=warnings, words=list(result.words), evidence=ev)
    if out.reasons:
        floor = policy.final.low_word_confidence
        low = [(w.left, w.top, w.width, w.height) for w in out.words if w.conf < floor]
        # the QA image's header shows the report's figure: the final score after a read, the image score otherwise
        shown = image_legibility if out.legibility is None else out.legibility
        out.overlay = quality.annotate_problems(image, measures, out.reasons, low, policy.reasons.blur_rel_max,
                                                legibility=shown)
    return out
