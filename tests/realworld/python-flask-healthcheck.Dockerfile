FROM python:3.12-slim
WORKDIR /app
COPY requirements.txt /app/
RUN pip3 install --no-cache-dir -r requirements.txt
COPY . /app
ENV FLASK_APP=app.py FLASK_RUN_HOST=0.0.0.0
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --start-interval=1s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:5000/health')"
STOPSIGNAL SIGINT
CMD ["flask", "run"]
