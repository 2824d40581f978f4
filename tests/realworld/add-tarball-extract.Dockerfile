FROM debian:bookworm-slim
ADD rootfs.tar.xz /
ADD vendor-assets.tar.gz /opt/assets/
ADD config/*.conf /etc/app/
CMD ["/bin/bash"]
