# base-platform: example/arm-only-tool:1.0=linux/arm64
FROM example/arm-only-tool:1.0
RUN tool --version
# expect-warning: InvalidBaseImagePlatform
