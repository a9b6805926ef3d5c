"""Khana quality engine: orientation, deskew, correction, legibility measures, score and gate.

Pure functions over numpy arrays; the only file read is the shipped gate policy TOML.
"""
from .annotate import annotate_problems
from .blur_map import blurred_regions, unread_text
from .correct import CorrectedPage, correct_page
from .final_score import FINAL_MODEL, final_legibility
from .gate import GatePolicy, OcrEvidence, PolicyError, early_gate, final_gate, load_policy, read_warnings
from .measures import PageMeasures, measure_page
from .reasons import REASONS, reason_message
from .score import SCORE_MODEL, legibility_score

__all__ = [
    "REASONS", "reason_message", "CorrectedPage", "correct_page", "PageMeasures", "measure_page",
    "legibility_score", "GatePolicy", "load_policy", "early_gate", "final_gate", "annotate_problems",
    "SCORE_MODEL", "final_legibility", "FINAL_MODEL", "blurred_regions", "unread_text", "OcrEvidence", "PolicyError",
    "read_warnings",
]
