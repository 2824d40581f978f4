#!/usr/bin/env python3
"""Generates the parser corpus: realistic Dockerfiles (ok/) and ones that must fail (err/)."""
import os, sys, itertools

root = sys.argv[1]
ok_dir = os.path.join(root, "ok")
err_dir = os.path.join(root, "err")
os.makedirs(ok_dir, exist_ok=True)
os.makedirs(err_dir, exist_ok=True)
ok = []
err = []

def add(name, text):
    ok.append((name, text))

def bad(name, text):
    err.append((name, text))

# --- Go multi-stage builds -------------------------------------------------------------
for i, (gover, base, cgo) in enumerate(itertools.product(["1.21", "1.22", "1.23"], ["scratch", "gcr.io/distroless/static:nonroot", "alpine:3.20"], ["0", "1"])):
    final_user = "USER nonroot:nonroot\n" if "distroless" in base else ("RUN adduser -D app\nUSER app\n" if "alpine" in base else "")
    certs = "COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/\n" if base == "scratch" else ""
    add(f"go-{gover}-{base.split('/')[-1].split(':')[0]}-cgo{cgo}", f"""# syntax=docker/dockerfile:1
ARG GO_VERSION={gover}
FROM golang:${{GO_VERSION}}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED={cgo} GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \\
    go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \\
    --mount=type=cache,target=/go/pkg/mod \\
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags="-s -w" -o /out/server ./cmd/server

FROM {base}
{certs}COPY --from=build /out/server /server
{final_user}EXPOSE 8080
ENTRYPOINT ["/server"]
""")

# --- Rust ------------------------------------------------------------------------------
for i, (rust, final) in enumerate(itertools.product(["1.79", "1.82", "1-slim"], ["debian:bookworm-slim", "gcr.io/distroless/cc-debian12", "scratch"])):
    add(f"rust-{rust}-{final.split('/')[-1].split(':')[0]}", f"""FROM rust:{rust} AS chef
WORKDIR /app
RUN cargo install cargo-chef --locked

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \\
    cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release --bin app && \\
    strip target/release/app

FROM {final} AS runtime
LABEL org.opencontainers.image.source="https://example.com/app" \\
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /app/target/release/app /usr/local/bin/app
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["--help"]
""")

# --- Node ------------------------------------------------------------------------------
for node, pm in itertools.product(["18", "20", "22"], ["npm", "yarn", "pnpm"]):
    install = {"npm": "npm ci --omit=dev", "yarn": "yarn install --frozen-lockfile --production", "pnpm": "corepack enable && pnpm install --frozen-lockfile --prod"}[pm]
    lock = {"npm": "package-lock.json", "yarn": "yarn.lock", "pnpm": "pnpm-lock.yaml"}[pm]
    add(f"node-{node}-{pm}", f"""FROM node:{node}-alpine AS deps
WORKDIR /usr/src/app
COPY package.json {lock} ./
RUN {install}

FROM node:{node}-alpine AS build
WORKDIR /usr/src/app
COPY --from=deps /usr/src/app/node_modules ./node_modules
COPY . .
RUN {pm} run build

FROM node:{node}-alpine
ENV NODE_ENV=production PORT=3000
WORKDIR /usr/src/app
COPY --chown=node:node --from=build /usr/src/app/dist ./dist
COPY --chown=node:node --from=deps /usr/src/app/node_modules ./node_modules
USER node
EXPOSE $PORT
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \\
  CMD wget -qO- http://localhost:3000/healthz || exit 1
CMD ["node", "dist/main.js"]
""")

# --- Python ----------------------------------------------------------------------------
for py, variant in itertools.product(["3.10", "3.11", "3.12", "3.13"], ["slim", "alpine", "bookworm"]):
    pkg = "apk add --no-cache build-base libffi-dev" if variant == "alpine" else "apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*"
    add(f"python-{py}-{variant}", f"""FROM python:{py}-{variant} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=off
WORKDIR /app

FROM base AS builder
RUN {pkg}
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
""")

# --- Heredoc scripts ---------------------------------------------------------------------
for distro in ["debian:bookworm", "ubuntu:24.04", "alpine:3.20", "fedora:40"]:
    mgr = {"debian": "apt-get update && apt-get install -y curl", "ubuntu": "apt-get update && apt-get install -y curl", "alpine": "apk add --no-cache curl", "fedora": "dnf install -y curl"}[distro.split(':')[0]]
    add(f"heredoc-run-{distro.replace(':', '-')}", f"""# syntax=docker/dockerfile:1.4
FROM {distro}
RUN <<EOF
set -eux
{mgr}
mkdir -p /opt/app
EOF
RUN <<-'SCRIPT' bash
\tset -e
\techo "no $EXPANSION here"
\tSCRIPT
COPY <<EOF /etc/app.conf
listen = 0.0.0.0:8080
home = ${{HOME:-/root}}
EOF
COPY <<'NOEXPAND' <<CONF2 /etc/
literal $HOME
NOEXPAND
second file
CONF2
RUN <<EOT python3
print("hello from python")
EOT
""")
add("heredoc-shebang", """FROM python:3.12-slim
RUN <<EOF
#!/usr/bin/env python3
import sys
print(sys.version)
EOF
RUN 3<<EOF cat /dev/fd/3 > /out.txt
data on fd 3
EOF
""")
add("heredoc-onbuild", """FROM alpine:3.20 AS base
ONBUILD RUN <<EOF
echo building on top of base
EOF
ONBUILD COPY . /app
""")
add("heredoc-multiple-cat", """FROM busybox
RUN cat <<A > /a && cat <<B > /b
alpha
A
bravo
B
RUN <<X <<Y cat /dev/stdin
Y
X
X
Y
""")

# --- escape=backtick Windows-style ---------------------------------------------------------
for i, base in enumerate(["mcr.microsoft.com/windows/servercore:ltsc2022", "mcr.microsoft.com/dotnet/framework/sdk:4.8", "mcr.microsoft.com/powershell:lts-nanoserver-1809", "mcr.microsoft.com/windows/nanoserver:ltsc2022"]):
    add(f"windows-backtick-{i}", f"""# escape=`
FROM {base}
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]
ENV APP_HOME=C:\\app `
    LOG_DIR=C:\\logs
WORKDIR C:\\app
COPY app\\ C:\\app\\
RUN Invoke-WebRequest -Uri https://example.com/tool.zip -OutFile tool.zip ; `
    Expand-Archive tool.zip -DestinationPath C:\\tool ; `
    Remove-Item tool.zip
RUN New-Item -ItemType Directory -Path $env:LOG_DIR
EXPOSE 80
CMD ["powershell", "-File", "C:\\\\app\\\\start.ps1"]
""")
add("windows-backtick-cmd", """# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2019
RUN dir c:\\ `
    && echo done
COPY testfile.txt c:\\
""")

# --- ONBUILD bases -------------------------------------------------------------------------
for lang, base, steps in [
    ("python", "python:3.12-slim", ["COPY requirements.txt /usr/src/app/", "RUN pip install --no-cache-dir -r requirements.txt", "COPY . /usr/src/app"]),
    ("node", "node:20", ["COPY package*.json /usr/src/app/", "RUN npm install", "COPY . /usr/src/app"]),
    ("ruby", "ruby:3.3", ["COPY Gemfile Gemfile.lock /usr/src/app/", "RUN bundle install", "COPY . /usr/src/app"]),
    ("golang", "golang:1.22", ["COPY . /go/src/app", "RUN go get -d -v ./...", "RUN go install -v ./..."]),
    ("java", "maven:3-eclipse-temurin-21", ["COPY pom.xml /usr/src/app/", "RUN mvn -B dependency:go-offline", "COPY src /usr/src/app/src"]),
]:
    body = "".join(f"ONBUILD {s}\n" for s in steps)
    add(f"onbuild-{lang}", f"""FROM {base}
RUN mkdir -p /usr/src/app
WORKDIR /usr/src/app
{body}CMD ["sh", "-c", "echo override me"]
""")

# --- Classic single-stage images ------------------------------------------------------------
for i, (base, svc, port) in enumerate([
    ("nginx:1.27-alpine", "nginx", 80), ("httpd:2.4", "httpd-foreground", 80),
    ("redis:7", "redis-server", 6379), ("postgres:16", "postgres", 5432),
    ("debian:bookworm-slim", "haproxy", 8443), ("ubuntu:22.04", "supervisord", 9001),
    ("centos:7", "sshd", 22), ("alpine:3.19", "crond", 0),
]):
    expose = f"EXPOSE {port}/tcp\n" if port else ""
    add(f"service-{svc}", f"""FROM {base}
MAINTAINER Jane Doe <jane@example.com>
LABEL version="1.{i}" description="{svc} image" maintainer="ops@example.com"
ENV DEBIAN_FRONTEND noninteractive
RUN set -x \\
    && echo "installing {svc}" \\
    # comments inside continuations are skipped
    && true
ADD --chown=0:0 https://example.com/{svc}.conf /etc/{svc}.conf
VOLUME ["/var/lib/{svc}", "/var/log/{svc}"]
{expose}STOPSIGNAL SIGQUIT
USER root
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["{svc}"]
""")

# --- Flags and options ------------------------------------------------------------------------
add("run-mounts-all", """FROM debian:bookworm
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc,required \\
    --mount=type=ssh,id=default \\
    --mount=type=tmpfs,target=/tmp,size=64m \\
    --mount=type=bind,from=tools,source=/bin/tool,target=/usr/local/bin/tool \\
    --mount=type=cache,id=apt,target=/var/cache/apt,sharing=locked,mode=0755,uid=0,gid=0 \\
    --network=none --security=sandbox \\
    ./build.sh
RUN --network=host curl -fsS https://example.com
RUN --security=insecure mount -t tmpfs none /mnt
""")
add("copy-flags", """FROM alpine AS src
RUN mkdir -p /out && touch /out/a /out/b
FROM alpine
COPY --from=src --chown=1000:1000 --chmod=0640 /out/a /dst/
COPY --link --from=src /out/b /linked/
COPY --parents ./src/./pkg/**/*.go /workspace/
COPY --exclude=*.md --exclude=docs/ . /app/
COPY ["file with spaces.txt", "/opt/dest dir/"]
COPY --chmod=u+rwx,g+rx script.sh /usr/local/bin/
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/archive.tar.gz /tmp/
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.12.0 /buildkit
ADD --unpack=false layer.tar /layers/
ADD --link vendor.tgz /vendor/
""")
add("from-platform", """ARG BASE=alpine:3.20
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG TARGETPLATFORM BUILDPLATFORM TARGETOS TARGETARCH
RUN echo "building on $BUILDPLATFORM for $TARGETPLATFORM"
FROM --platform=linux/amd64 ${BASE} AS amd64-runtime
FROM $BASE
COPY --from=build /go/bin/app /app
""")
add("healthchecks", """FROM nginx
HEALTHCHECK NONE
HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/ || exit 1
HEALTHCHECK --start-period=30s --start-interval=5s --retries=10 CMD ["curl", "-f", "http://localhost/"]
""")
add("expose-forms", """FROM busybox
EXPOSE 80 443
EXPOSE 8000-8010/tcp 53/udp
EXPOSE 9000/sctp
ARG PORT=3000
EXPOSE ${PORT}
""")
add("args-forms", """ARG REGISTRY=docker.io
ARG IMAGE=library/alpine
ARG TAG
FROM ${REGISTRY}/${IMAGE}:${TAG:-3.20}
ARG A B=2 C="three words"
ARG D=$B-suffix
ARG http_proxy
RUN echo "$A $B $C $D"
""")
add("env-label-forms", """FROM busybox
ENV A=1 B="two words" C=three\\ words D='single $quoted'
ENV LEGACY value with spaces
ENV PATH=/opt/bin:$PATH \\
    EMPTY= \\
    QUOTED="a \\"q\\" b"
LABEL a=b "c d"=e
LABEL multi.line="first" \\
      multi.line2="second"
LABEL legacy label value
""")
add("volume-user-workdir", """FROM busybox
VOLUME /data
VOLUME /a /b /c
VOLUME ["/json1", "/json2"]
USER 1000:1000
USER nobody
WORKDIR /app
WORKDIR sub/dir
WORKDIR $HOME/work
""")
add("cmd-entrypoint-forms", """FROM busybox
CMD echo shell form
CMD ["echo", "exec", "form"]
CMD ['single', 'quotes', 'are', 'shell', 'form']
CMD ["trailing", "comma",]
ENTRYPOINT ["/bin/sh", "-c"]
ENTRYPOINT /bin/sh -c 'exec "$@"'
CMD []
""")
add("shell-instruction", """FROM busybox
SHELL ["/bin/sh", "-eu", "-c"]
RUN echo uses the new shell
CMD echo cmd also uses it
SHELL ["/bin/ash", "-c"]
ENTRYPOINT echo entrypoint
""")
add("stopsignal-forms", """FROM busybox
STOPSIGNAL SIGTERM
STOPSIGNAL 9
STOPSIGNAL SIGRTMIN+3
""")
add("case-insensitive", """from busybox as base
run echo lower
env a=1
copy . /src
workdir /src
cmd ["true"]
""")
add("mixed-case-keywords", """FROM busybox AS base
Run echo mixed
rUN echo odd
CMD true
""")
add("crlf-line-endings", "FROM busybox\r\nRUN echo one \\\r\n    two\r\nCMD [\"sh\"]\r\n")
add("bom-and-leading-whitespace", "\ufeffFROM busybox\n   RUN echo indented\n\t\tCOPY a /b\n")
add("continuation-comments-blank", """FROM busybox
RUN apt-get update \\
# a comment in the middle

    && apt-get install -y \\
        curl \\
        # another
        jq
RUN echo done \\
""")
add("continuation-at-eof", "FROM busybox\nRUN echo a \\\n  b \\")
add("escaped-escape-no-continuation", "FROM busybox\nRUN echo C:\\\\\\\\\nRUN echo next\n")
add("directives-all", """# syntax=docker/dockerfile:1.7-labs
# escape=\\
# check=skip=JSONArgsRecommended;error=false
FROM busybox
CMD echo skipped check
""")
add("directive-after-comment-is-comment", """# a comment first
# escape=`
FROM busybox
RUN echo \\
  still backslash continuation
""")
add("unknown-directive-is-comment", """# foo=bar
# escape=`
FROM busybox
""")
add("check-skip-all", """# check=skip=all
FROM busybox AS Builder
MAINTAINER x
cmd echo hi
""")
add("check-comment-per-instruction", """FROM busybox
# check=skip=JSONArgsRecommended
CMD echo this one is skipped
ENTRYPOINT echo this one is not
""")
add("lint-many", """FROM busybox AS Builder
FROM busybox as second
MAINTAINER someone
ENV PASSWORD=hunter2
ARG API_TOKEN
ENV key value
WORKDIR relative/dir
CMD echo one
CMD echo two
EXPOSE 80/TCP 127.0.0.1:8080:80
FROM busybox AS second
""")
add("lint-from-args", """ARG BASE=alpine
ARG VERSION
FROM ${BASE}:${VERSION}
FROM ${UNDECLARED:-busybox}
FROM --platform=linux/amd64 busybox
FROM --platform=$TARGETPLATFORM busybox
FROM --platform=linux/arm64 busybox AS build-arm64
""")
add("stage-refs", """FROM alpine AS base
RUN echo base > /base
FROM base AS build1
RUN echo one >> /base
FROM base AS build2
RUN echo two >> /base
FROM scratch
COPY --from=build1 /base /one
COPY --from=build2 /base /two
COPY --from=0 /base /zero
COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf
""")
add("onbuild-everything", """FROM busybox
ONBUILD ADD . /app/src
ONBUILD RUN cd /app/src && make
ONBUILD ENV BUILT=1
ONBUILD LABEL built=true
ONBUILD WORKDIR /app
ONBUILD USER nobody
ONBUILD EXPOSE 80
ONBUILD VOLUME /data
ONBUILD CMD ["run"]
ONBUILD ENTRYPOINT ["entry"]
ONBUILD HEALTHCHECK NONE
ONBUILD STOPSIGNAL SIGINT
ONBUILD SHELL ["/bin/bash", "-c"]
ONBUILD ARG X=1
ONBUILD COPY --from=other /x /y
""")
add("json-edge-cases", """FROM busybox
RUN ["echo", "unicode ♥ ☃", "escapes \\" \\\\ \\/ \\t"]
RUN [ "spaced" ,  "array" ]
RUN ["a", "b"] trailing text makes it shell form
RUN [not json at all]
CMD [""]
""")
add("flags-end-marker", """FROM busybox
COPY -- --weird-name /dst
RUN -- echo after marker
""")
add("quotes-in-flags", """FROM busybox
COPY --chown="app user":'app group' a /b
RUN --mount="type=cache,target=/c" true
""")
add("long-continuation", "FROM debian\nRUN apt-get update && apt-get install -y \\\n" + "".join(f"    pkg{n} \\\n" for n in range(60)) + "    && rm -rf /var/lib/apt/lists/*\n")
add("many-stages", "".join(f"FROM alpine AS s{n}\nRUN echo {n} > /f{n}\n" for n in range(20)) + "FROM scratch\n" + "".join(f"COPY --from=s{n} /f{n} /\n" for n in range(20)))
add("add-urls-git", """FROM alpine
ADD https://example.com/file.txt /tmp/
ADD https://example.com/dir/ /tmp/dir/
ADD git@github.com:moby/buildkit.git#master:docs /docs
ADD https://github.com/moby/moby.git?ref=v24.0.0&subdir=contrib /contrib
""")
add("java-spring", """FROM eclipse-temurin:21-jdk AS build
WORKDIR /workspace/app
COPY mvnw .
COPY .mvn .mvn
COPY pom.xml .
COPY src src
RUN --mount=type=cache,target=/root/.m2 ./mvnw install -DskipTests
RUN mkdir -p target/dependency && (cd target/dependency; jar -xf ../*.jar)

FROM eclipse-temurin:21-jre
VOLUME /tmp
ARG DEPENDENCY=/workspace/app/target/dependency
COPY --from=build ${DEPENDENCY}/BOOT-INF/lib /app/lib
COPY --from=build ${DEPENDENCY}/META-INF /app/META-INF
COPY --from=build ${DEPENDENCY}/BOOT-INF/classes /app
ENTRYPOINT ["java","-cp","app:app/lib/*","hello.Application"]
""")
add("dotnet", """FROM mcr.microsoft.com/dotnet/sdk:8.0 AS build
WORKDIR /source
COPY *.csproj .
RUN dotnet restore --use-current-runtime
COPY . .
RUN dotnet publish --use-current-runtime --self-contained false --no-restore -o /app

FROM mcr.microsoft.com/dotnet/aspnet:8.0
WORKDIR /app
COPY --from=build /app .
USER $APP_UID
ENTRYPOINT ["./aspnetapp"]
""")
add("php-apache", """FROM php:8.3-apache
RUN apt-get update && apt-get install -y \\
        libfreetype-dev \\
        libjpeg62-turbo-dev \\
        libpng-dev \\
    && docker-php-ext-configure gd --with-freetype --with-jpeg \\
    && docker-php-ext-install -j$(nproc) gd
COPY --chown=www-data:www-data src/ /var/www/html/
RUN a2enmod rewrite
ENV APACHE_DOCUMENT_ROOT /var/www/html/public
RUN sed -ri -e 's!/var/www/html!${APACHE_DOCUMENT_ROOT}!g' /etc/apache2/sites-available/*.conf
""")
add("ruby-rails", """ARG RUBY_VERSION=3.3.0
FROM ruby:$RUBY_VERSION-slim AS base
WORKDIR /rails
ENV RAILS_ENV="production" \\
    BUNDLE_DEPLOYMENT="1" \\
    BUNDLE_PATH="/usr/local/bundle" \\
    BUNDLE_WITHOUT="development"

FROM base AS build
RUN apt-get update -qq && \\
    apt-get install --no-install-recommends -y build-essential git libvips pkg-config
COPY Gemfile Gemfile.lock ./
RUN bundle install && \\
    rm -rf ~/.bundle/ "${BUNDLE_PATH}"/ruby/*/cache "${BUNDLE_PATH}"/ruby/*/bundler/gems/*/.git
COPY . .
RUN SECRET_KEY_BASE_DUMMY=1 ./bin/rails assets:precompile

FROM base
COPY --from=build /usr/local/bundle /usr/local/bundle
COPY --from=build /rails /rails
RUN useradd rails --create-home --shell /bin/bash && \\
    chown -R rails:rails db log storage tmp
USER rails:rails
ENTRYPOINT ["/rails/bin/docker-entrypoint"]
EXPOSE 3000
CMD ["./bin/rails", "server"]
""")
add("static-site", """FROM node:20 AS build
WORKDIR /site
COPY . .
RUN npm ci && npm run build
FROM nginx:alpine
COPY --from=build /site/public /usr/share/nginx/html
COPY nginx.conf /etc/nginx/conf.d/default.conf
""")
add("wildcards", """FROM busybox
COPY *.txt /texts/
COPY dir/[ab]*.conf /etc/
COPY file?.log /logs/
ADD *.tar.gz /unpacked/
""")
add("env-expansion-chain", """FROM busybox
ENV BASE=/opt
ENV APP=${BASE}/app BIN=$BASE/bin
ENV PATH=$BIN:$PATH
WORKDIR ${APP}
COPY . ${APP:-/fallback}/
RUN echo ${APP#/opt} ${APP%/app} ${APP/opt/srv}
""")
add("user-group-forms", """FROM busybox
USER 0
USER root:root
USER app:1000
ARG UID=1000
USER ${UID}:${UID}
""")
add("comments-everywhere", """# top comment
  # indented comment

FROM busybox

# between
RUN echo hi # trailing text is part of the command
	# tab-indented comment
CMD ["sh"]
""")
add("empty-continuation-warning", """FROM busybox
RUN echo a \\

    b
""")
add("arg-only-in-from", """ARG IMG=busybox
ARG TAG=latest
FROM $IMG:$TAG
ARG IMG
RUN echo $IMG
""")
add("maintainer-and-label", """FROM busybox
MAINTAINER "Quoted Name" <q@example.com>
LABEL maintainer="Quoted Name <q@example.com>"
""")
add("tabs-and-vertical-space", "FROM\tbusybox\nRUN\techo\ttabs\nENV\tA=1\n")
add("unicode-content", """FROM busybox
LABEL description="日本語のラベル" emoji="🐳"
RUN echo "héllo wörld" > /greeting
ENV GRÜSSE=hallo
""")
add("nested-heredoc-in-copy-json-not-heredoc", """FROM busybox
COPY ["<<EOF", "/dest"]
RUN echo "<<NOT" && echo done
""")


# --- CLI tool images ---------------------------------------------------------------------------
for tool, ver in [("terraform", "1.9.5"), ("kubectl", "1.31.0"), ("helm", "3.15.4"), ("awscli", "2.17.0"),
                  ("gh", "2.55.0"), ("yq", "4.44.3"), ("jq", "1.7.1"), ("shellcheck", "0.10.0"),
                  ("hadolint", "2.12.0"), ("trivy", "0.54.1"), ("k9s", "0.32.5"), ("restic", "0.17.0")]:
    add(f"cli-{tool}", f"""FROM alpine:3.20 AS download
ARG {tool.upper()}_VERSION={ver}
ARG TARGETARCH=amd64
ADD https://example.com/releases/{tool}/v${{{tool.upper()}_VERSION}}/{tool}_linux_${{TARGETARCH}}.tar.gz /tmp/{tool}.tar.gz
RUN tar -xzf /tmp/{tool}.tar.gz -C /usr/local/bin {tool} \\
 && chmod +x /usr/local/bin/{tool}

FROM alpine:3.20
RUN apk add --no-cache ca-certificates git openssh-client
COPY --from=download /usr/local/bin/{tool} /usr/local/bin/{tool}
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/{tool}"]
CMD ["--version"]
""")

# --- Package-install images ----------------------------------------------------------------------
for i, pkgs in enumerate([["git", "curl"], ["build-essential", "cmake", "ninja-build"], ["python3", "python3-pip"],
                          ["openjdk-17-jdk-headless"], ["postgresql-client", "mysql-client"], ["nginx", "certbot"],
                          ["ffmpeg", "imagemagick"], ["tini", "dumb-init"], ["locales", "tzdata"], ["sudo", "vim", "less"]]):
    lines = " \\\n        ".join(pkgs)
    add(f"apt-{i}-{pkgs[0]}", f"""FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\
    --mount=type=cache,target=/var/lib/apt,sharing=locked \\
    apt-get update && apt-get install -y --no-install-recommends \\
        {lines} \\
    && rm -rf /var/lib/apt/lists/*
RUN groupadd -r app && useradd -r -g app -d /home/app -m app
USER app
WORKDIR /home/app
""")

# --- Multi-arch cross builds ---------------------------------------------------------------------
for arch in ["amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64", "386", "mips64le"]:
    add(f"cross-{arch}", f"""FROM --platform=$BUILDPLATFORM tonistiigi/xx AS xx
FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build
COPY --from=xx / /
ARG TARGETPLATFORM
RUN xx-apk add --no-cache gcc musl-dev
ENV CGO_ENABLED=1
WORKDIR /src
COPY . .
RUN xx-go build -o /out/app . && xx-verify /out/app

FROM --platform=linux/{arch} alpine:3.20 AS final-{arch}
COPY --from=build /out/app /usr/bin/app
ENTRYPOINT ["app"]
""")

for n, (name, text) in enumerate(ok):
    with open(os.path.join(ok_dir, f"{n:03d}-{name}.Dockerfile"), "w", newline="") as f:
        f.write(text)

# --- Files that must fail --------------------------------------------------------------------
bad("unknown-instruction", "FROM busybox\nRUNN echo hi\n")
bad("unknown-instruction-lower", "from busybox\nfoo bar\n")
bad("unknown-flag-copy", "FROM busybox\nCOPY --chmodd=755 a /b\n")
bad("unknown-flag-run", "FROM busybox\nRUN --mnt=type=cache,target=/x true\n")
bad("flag-on-wrong-instruction", "FROM busybox\nCOPY --checksum=sha256:abc a /b\n")
bad("flag-on-env", "FROM busybox\nENV --foo=bar A=1\n")
bad("duplicate-flag", "FROM busybox AS a\nFROM busybox\nCOPY --from=a --from=a x /y\n")
bad("missing-flag-value", "FROM busybox\nCOPY --from x /y\n")
bad("bool-flag-bad-value", "FROM busybox\nCOPY --link=maybe a /b\n")
bad("bool-flag-empty", "FROM busybox\nADD --link= a /b\n")
bad("bad-network", "FROM busybox\nRUN --network=bridge true\n")
bad("bad-security", "FROM busybox\nRUN --security=privileged true\n")
bad("mount-from-variable", "FROM busybox\nRUN --mount=type=bind,from=$STAGE,target=/x true\n")
bad("mount-bad-csv", "FROM busybox\nRUN --mount=type=bind,\\\"src\\\"x,target=/a true\n")
bad("from-trailing-comment", "FROM busybox # comments are not allowed here\nRUN true\n")
bad("copy-one-arg", "FROM busybox\nCOPY onlyone\n")
bad("add-no-args", "FROM busybox\nADD\n")
bad("from-no-args", "FROM\n")
bad("from-two-args", "FROM busybox extra\n")
bad("from-bad-stage-name", "FROM busybox AS 1stage\n")
bad("from-stage-name-symbols", "FROM busybox AS my$stage\n")
bad("env-no-args", "FROM busybox\nENV\n")
bad("env-legacy-one-word", "FROM busybox\nENV ONLYKEY\n")
bad("env-missing-equals", "FROM busybox\nENV A=1 B\n")
bad("env-blank-name", "FROM busybox\nENV =value\n")
bad("label-missing-equals", "FROM busybox\nLABEL a=b c\n")
bad("arg-blank-name", "FROM busybox\nARG =x\n")
bad("arg-no-args", "FROM busybox\nARG\n")
bad("workdir-missing", "FROM busybox\nWORKDIR\n")
bad("user-missing", "FROM busybox\nUSER\n")
bad("volume-empty-json", "FROM busybox\nVOLUME [\"\"]\n")
bad("shell-not-json", "FROM busybox\nSHELL /bin/bash -c\n")
bad("shell-empty", "FROM busybox\nSHELL []\n")
bad("json-not-strings", "FROM busybox\nCMD [\"a\", 1]\n")
bad("json-nested-array", "FROM busybox\nRUN [[\"nested\"]]\n")
bad("healthcheck-none-args", "FROM busybox\nHEALTHCHECK NONE extra\n")
bad("healthcheck-bad-type", "FROM busybox\nHEALTHCHECK PING localhost\n")
bad("healthcheck-no-cmd", "FROM busybox\nHEALTHCHECK --interval=5s CMD\n")
bad("healthcheck-bad-duration", "FROM busybox\nHEALTHCHECK --interval=5 CMD true\n")
bad("healthcheck-tiny-duration", "FROM busybox\nHEALTHCHECK --timeout=1us CMD true\n")
bad("healthcheck-negative-retries", "FROM busybox\nHEALTHCHECK --retries=-1 CMD true\n")
bad("onbuild-onbuild", "FROM busybox\nONBUILD ONBUILD RUN x\n")
bad("onbuild-from", "FROM busybox\nONBUILD FROM alpine\n")
bad("onbuild-maintainer", "FROM busybox\nONBUILD MAINTAINER me\n")
bad("onbuild-empty", "FROM busybox\nONBUILD\n")
bad("no-from", "RUN echo no stage\n")
bad("only-args", "ARG A=1\nARG B=2\n")
bad("only-comments", "# nothing here\n# at all\n")
bad("empty-file", "")
bad("unterminated-heredoc", "FROM busybox\nRUN <<EOF\necho never ends\n")
bad("heredoc-as-dest", "FROM busybox\nCOPY a <<EOF\nx\nEOF\n")
bad("bad-escape-directive", "# escape=x\nFROM busybox\n")
bad("duplicate-directive", "# escape=\\\n# escape=`\nFROM busybox\n")
bad("foreign-syntax", "# syntax=example.com/my/frontend:2\nFROM busybox\n")
bad("bad-check-directive", "# check=skip=A;nope=1\nFROM busybox\n")
bad("check-error-true", "# check=error=true\nFROM busybox AS Builder\nCMD echo hi\n")
bad("several-errors", "FROM busybox\nRUNN a\nCOPY --chmodd=1 a b\nENV\nHEALTHCHECK\n")
bad("maintainer-no-args", "FROM busybox\nMAINTAINER\n")
bad("stopsignal-missing", "FROM busybox\nSTOPSIGNAL\n")
bad("expose-missing", "FROM busybox\nEXPOSE\n")
bad("continuation-then-unknown", "FROM busybox\nRUN echo a \\\n  b\nFROOM c\n")

for n, (name, text) in enumerate(err):
    with open(os.path.join(err_dir, f"{n:03d}-{name}.Dockerfile"), "w", newline="") as f:
        f.write(text)
print(len(ok), "ok;", len(err), "err")
