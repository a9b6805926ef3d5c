"""The HTTP API (FastAPI): station uploads, batch status and rescan lists, searchable PDFs."""
