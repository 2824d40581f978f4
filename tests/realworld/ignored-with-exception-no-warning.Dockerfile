# dockerignore: *.md
# dockerignore: !README.md
FROM alpine:3.19
# With an exception pattern BuildKit does not check copies statically.
COPY README.md CHANGELOG.md /docs/
