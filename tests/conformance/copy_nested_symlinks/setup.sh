mkdir -p tree/level1/level2/level3
echo deep > tree/level1/level2/level3/file
ln -s level2/level3 tree/level1/to-level3
ln -s ../level1 tree/level1/level2/up
ln -s /etc tree/level1/abs-etc
ln -s missing tree/level1/dangling
ln -s to-level3/file tree/level1/chain
ln -s tree/level1 linkdir
