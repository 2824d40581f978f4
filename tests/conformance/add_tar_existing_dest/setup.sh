mkdir -p t/sub t/keep t/new
echo new > t/sub/replaced
echo added > t/keep/added
echo brand-new > t/new/n
chmod 755 t/sub
tar -C t -cf archive.tar sub keep new
rm -rf t
