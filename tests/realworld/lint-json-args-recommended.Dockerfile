FROM python:3.12-slim
WORKDIR /app
COPY . .
ENTRYPOINT python -m app
CMD exec python -m app --port 8080
# expect-warning: JSONArgsRecommended
# expect-warning: JSONArgsRecommended
