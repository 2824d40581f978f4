FROM mambaorg/micromamba:1.5-jammy
COPY --chown=$MAMBA_USER:$MAMBA_USER env.yaml /tmp/env.yaml
RUN micromamba install -y -n base -f /tmp/env.yaml && \
    micromamba clean --all --yes
ARG MAMBA_DOCKERFILE_ACTIVATE=1
WORKDIR /work
COPY --chown=$MAMBA_USER:$MAMBA_USER . .
CMD ["python", "train.py"]
# MAMBA_USER comes from the micromamba image; the placeholder base has no Env.
# expect-warning: UndefinedVar
# expect-warning: UndefinedVar
