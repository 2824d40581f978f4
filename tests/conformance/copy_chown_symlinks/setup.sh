mkdir -p tree/dir && echo f > tree/dir/f
ln -s dir tree/dirlink
ln -s dir/f tree/filelink
ln -s /nowhere tree/dangling
