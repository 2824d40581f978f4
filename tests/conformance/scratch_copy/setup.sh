chmod 755 bin/tool
