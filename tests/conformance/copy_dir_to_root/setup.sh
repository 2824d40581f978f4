chmod 755 rootfs/usr/local/bin/tool
chmod 700 rootfs/etc
