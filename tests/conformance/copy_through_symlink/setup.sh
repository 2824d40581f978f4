mkdir sub && chmod 700 sub && echo contents > sub/foo && chmod 600 sub/foo
ln -s sub link
