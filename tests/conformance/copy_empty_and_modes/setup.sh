mkdir -p tree/emptydir tree/x-only
: > tree/emptyfile
echo z > tree/zero && chmod 000 tree/zero
chmod 311 tree/x-only
chmod 4755 tree/emptyfile
chmod 1700 tree/emptydir
