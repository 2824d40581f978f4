FROM scratch
ADD rootfs.tar.xz /
CMD ["bash"]
