FROM python:3.12-slim
RUN <<EOF
#!/usr/bin/env python3
import sys
print(sys.version)
EOF
RUN 3<<EOF cat /dev/fd/3 > /out.txt
data on fd 3
EOF
