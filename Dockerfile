# Khana's image: the API, the workers, the sweeper and the migrations all run from it
# (see docker-compose.yml). Tesseract with the Persian model is inside.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_THREAD_LIMIT=1 \
    KHANA_HOME=/var/lib/khana

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      tesseract-ocr tesseract-ocr-fas poppler-utils fonts-noto-core fonts-farsiweb libraqm0 \
 && rm -rf /var/lib/apt/lists/* \
 && tesseract --list-langs | grep -qx fas

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core ./core
COPY khana ./khana
COPY station ./station
COPY pipeline ./pipeline
COPY workers ./workers
COPY ocr ./ocr
COPY quality ./quality
COPY storage ./storage
COPY testpages ./testpages
COPY api ./api
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /var/lib/khana --create-home khana

USER khana
# Plain `khana ...` commands; docker-compose.yml sets one per service.
CMD ["khana", "--help"]
