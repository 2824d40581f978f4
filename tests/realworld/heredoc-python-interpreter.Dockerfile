# syntax=docker/dockerfile:1
FROM python:3.12-slim
RUN <<EOF python3
import json, platform
with open("/build-info.json", "w") as f:
    json.dump({"python": platform.python_version()}, f)
EOF
RUN <<EOF
#!/usr/bin/env sh
set -e
cat /build-info.json
EOF
CMD ["python3", "-c", "print(open('/build-info.json').read())"]
