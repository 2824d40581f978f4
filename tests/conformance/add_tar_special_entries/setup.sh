mkdir -p t/d
echo f > t/d/f
mkfifo t/fifo
mknod t/chardev c 1 3
ln -s d/f t/d-link
chmod 0 t/d/f
tar -C t -cf special.tar --numeric-owner .
# An entry with an absolute path and one with a leading ./ in the same archive.
mkdir -p u && echo abs > u/abs
tar -C u -rPf special.tar --transform "s,^abs,/absolute/abs," abs
rm -rf t u
