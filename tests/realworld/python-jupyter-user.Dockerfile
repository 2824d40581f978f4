ARG BASE_CONTAINER=quay.io/jupyter/minimal-notebook
FROM $BASE_CONTAINER

LABEL maintainer="Data Team <data@example.org>"

# Fix: https://github.com/hadolint/hadolint/wiki/DL4006
# Fix: https://github.com/koalaman/shellcheck/wiki/SC3014
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

USER root

RUN apt-get update --yes && \
    apt-get install --yes --no-install-recommends \
    # for cython: https://cython.readthedocs.io/en/latest/src/quickstart/install.html
    build-essential \
    # for latex labels
    cm-super \
    dvipng \
    # for matplotlib anim
    ffmpeg && \
    apt-get clean && rm -rf /var/lib/apt/lists/*

USER ${NB_UID}

RUN mamba install --yes \
    'altair' \
    'pandas' \
    'scikit-learn' && \
    mamba clean --all -f -y

WORKDIR "${HOME}"
# NB_UID and HOME come from the notebook image; the placeholder base has no Env.
# expect-warning: UndefinedVar
# expect-warning: UndefinedVar
# HOME is empty here, so the WORKDIR expands to "" (relative).
# expect-warning: WorkdirRelativePath
