FROM python:3.13-alpine AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=off
WORKDIR /app

FROM base AS builder
RUN apk add --no-cache build-base libffi-dev
COPY requirements.txt .
RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt

FROM base
COPY --from=builder /venv /venv
ENV PATH="/venv/bin:$PATH"
COPY . .
RUN useradd --create-home appuser 2>/dev/null || adduser -D appuser
USER appuser
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app.wsgi:application"]
