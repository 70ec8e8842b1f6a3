set -e
D=/tmp/aidelab/a
rm -rf $D/tree $D/db; mkdir -p $D/tree $D/db
cd $D/tree
printf 'hello\n' > perm; printf 'x\n' > uid; printf 'x\n' > gid; printf 'abc\n' > size; printf 'abcd\n' > content
printf 'm\n' > mtime; printf 'a\n' > atime; printf 'l\n' > nlink; ln -s target1 symlink
printf 'f\n' > file2dir; printf 'f\n' > file2link; printf 'x\n' > xattr; printf 'x\n' > acl
printf 'x\n' > immut; printf 'x\n' > appendonly; mkfifo fifo
printf 's\n' > 'with space'; printf 'n\n' > "$(printf 'new\nline')"; printf 't\n' > "$(printf 'tab\there')"
printf 'b\n' > 'back\slash'; printf 'u\n' > "$(printf 'bad\377byte')"; printf 'u\n' > "$(printf 'utf8\303\251')"
printf 'r\n' > removed; printf 'q\n' > 'quote"and%percent'
mkdir dir; printf 'x\n' > dir/f
touch -d '2020-01-01 00:00:00' mtime atime
