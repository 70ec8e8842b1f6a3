set -e
cd /tmp/aidelab/a/tree
chmod 600 perm; chown 65534 uid; chgrp 65534 gid; printf 'abcdefgh\n' > size; printf 'wxyz\n' > content
touch -d '2021-02-03 04:05:06' mtime; cat atime >/dev/null; touch -a -d '2022-01-01 00:00:00' atime
ln nlink nlink2; rm symlink; ln -s target2-longer-name-that-wraps-beyond-thirty-two-chars symlink
rm file2dir; mkdir file2dir; rm file2link; ln -s perm file2link
setfattr -n user.foo -v bar xattr; setfacl -m u:65534:r acl
chattr +i immut || true; chattr +a appendonly || true
rm removed; printf 'n\n' > added; printf 'n\n' > "$(printf 'added\001ctl')"
for f in 'with space' "$(printf 'new\nline')" "$(printf 'tab\there')" 'back\slash' "$(printf 'bad\377byte')" "$(printf 'utf8\303\251')" 'quote"and%percent' fifo; do chmod 640 "$f"; done
mkdir dacl; setfacl -d -m u:65534:rx dacl; printf x > dacl/f
setcap cap_net_raw+ep perm 2>/dev/null || echo nosetcap >&2
chattr +A +d uid || true; chattr +D +T dir || true
