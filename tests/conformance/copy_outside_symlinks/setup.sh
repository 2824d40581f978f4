mkdir -p tree/d
ln -s ../../../../etc/shadow tree/up
ln -s /etc/passwd tree/abs
ln -s . tree/self
ln -s d tree/d/loop-parent-name
ln -s "" tree/empty-target 2>/dev/null || true
