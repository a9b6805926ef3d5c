"""What every layer of Khana shares and nothing else: exit codes, the error base classes, status enums.

No dependencies (standard library only), so that `quality/`, `ocr/`, `storage/` and `pipeline/` can all
import it without importing each other or the entry points.
"""
