# syntax=docker/dockerfile:1.7-labs
FROM python:3.12-slim
WORKDIR /app
COPY --exclude=*.pyc --exclude=tests/ --exclude=**/__pycache__ . /app/
RUN pip install --no-cache-dir .
CMD ["python", "-m", "app"]
