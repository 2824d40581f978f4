chmod 700 tree/private
chmod 600 tree/private/secret
chmod 777 tree/open
chmod 640 tree/open/file
chmod 755 exec.sh
chmod 711 tree
