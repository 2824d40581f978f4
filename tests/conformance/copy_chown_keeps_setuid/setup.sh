mkdir -p tree/sgid-dir
echo s > tree/suid && chmod 4755 tree/suid
echo g > tree/sgid && chmod 2755 tree/sgid
chmod 2775 tree/sgid-dir
tar -C tree -cf suid.tar suid sgid sgid-dir
