mkdir -p t && echo inside > t/inside
tar -C t -cf a.tar inside
rm -rf t
