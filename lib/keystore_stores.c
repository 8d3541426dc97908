/* SPDX-License-Identifier: ISC */
/*
 * The stores peerlink ships behind pl_keystore_ops: in memory (wiped when
 * freed) and a directory (one file per item, written atomically; flock()
 * on the directory around a read-modify-write). The item format and the
 * keystore's logic are keystore.c's.
 *
 * The directory store trusts only what its user (or root) could have
 * written: the checksum of an item detects damage, not tampering, so the
 * directory and its items are refused when another user owns them or
 * when group or others can write them (see pl_keystore_open_dir).
 */
#include "keystore_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sodium.h>

/* ------------------------------------------------------- memory store */

typedef struct mem_item {
    struct mem_item *next;
    char name[PL_KEYSTORE_NAME_MAX + 1];
    uint8_t *data;
    size_t len;
} mem_item;

typedef struct mem_store {
    mem_item *head;
} mem_store;

static mem_item **mem_find(mem_store *m, const char *name)
{
    mem_item **pp = &m->head;
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

static int mem_get(void *ctx, const char *name, uint8_t **data, size_t *len)
{
    mem_item *it = *mem_find(ctx, name);
    if (!it)
        return PL_ERR_NOT_FOUND;
    uint8_t *d = malloc(it->len ? it->len : 1);
    if (!d)
        return PL_ERR_NOMEM;
    if (it->len)
        memcpy(d, it->data, it->len);
    *data = d;
    *len = it->len;
    return PL_OK;
}

static int mem_put(void *ctx, const char *name, const uint8_t *data, size_t len)
{
    mem_store *m = ctx;
    if (strlen(name) > PL_KEYSTORE_NAME_MAX)
        return PL_ERR_INVALID;
    uint8_t *d = malloc(len ? len : 1);
    if (!d)
        return PL_ERR_NOMEM;
    if (len)
        memcpy(d, data, len);
    mem_item **pp = mem_find(m, name);
    mem_item *it = *pp;
    if (it) {
        pl__wipe_free(it->data, it->len);
    } else {
        it = calloc(1, sizeof *it);
        if (!it) {
            pl__wipe_free(d, len);
            return PL_ERR_NOMEM;
        }
        strcpy(it->name, name);
        *pp = it;
    }
    it->data = d;
    it->len = len;
    return PL_OK;
}

static int mem_del(void *ctx, const char *name)
{
    mem_item **pp = mem_find(ctx, name);
    mem_item *it = *pp;
    if (!it)
        return PL_ERR_NOT_FOUND;
    *pp = it->next;
    pl__wipe_free(it->data, it->len);
    sodium_memzero(it, sizeof *it);
    free(it);
    return PL_OK;
}

static int mem_list(void *ctx, const char *prefix, int (*fn)(const char *name, void *arg),
                    void *arg)
{
    mem_store *m = ctx;
    for (mem_item *it = m->head; it; it = it->next)
        if (pl__has_prefix(it->name, prefix) && fn(it->name, arg) != 0)
            break;
    return PL_OK;
}

static void mem_free(void *ctx)
{
    mem_store *m = ctx;
    if (!m)
        return;
    mem_item *it = m->head;
    while (it) {
        mem_item *next = it->next;
        pl__wipe_free(it->data, it->len);
        sodium_memzero(it, sizeof *it);
        free(it);
        it = next;
    }
    free(m);
}

int pl_keystore_new_memory(pl_keystore **out)
{
    if (!out)
        return PL_ERR_INVALID;
    static const pl_keystore_ops ops = {sizeof(pl_keystore_ops), mem_get, mem_put, mem_del, mem_list, mem_free};
    mem_store *m = calloc(1, sizeof *m);
    if (!m)
        return PL_ERR_NOMEM;
    int rc = pl_keystore_new(&ops, m, out);
    if (rc != PL_OK)
        free(m);
    return rc;
}

/* ---------------------------------------------------- directory store */

typedef struct dir_store {
    int dirfd;  /* the directory, O_DIRECTORY: every operation is relative to it */
    char *path; /* as opened, for log lines */
} dir_store;

/* Who may have written a file: its owner must be this process's effective
 * user or root (the rule of OpenSSH's StrictModes), and neither its group
 * nor others may write it. NULL if so, else what is wrong. */
static const char *foreign_writer(const struct stat *st)
{
    if (st->st_uid != geteuid() && st->st_uid != 0)
        return "owned by another user";
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return "writable by group or others";
    return NULL;
}

static int refuse(const char *path, const char *name, const struct stat *st, const char *why)
{
    pl__log(PL_LOG_ERROR, "keystore %s%s%s: %s (owner uid %lu, mode %04o): refused", path, name ? "/" : "",
            name ? name : "", why, (unsigned long)st->st_uid, (unsigned)(st->st_mode & 07777));
    errno = EACCES;
    return PL_ERR_PERMISSION;
}

/* Check an item the store opened (fd, its fstat st): one that someone else
 * could have written is refused (PL_ERR_PERMISSION); one that group or
 * others can only read (a file copied in under umask 022) is made 0600 and
 * a warning names it. Anything but a regular file is left to the caller. */
static int check_item(dir_store *d, const char *name, int fd, const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return PL_OK;
    const char *why = foreign_writer(st);
    if (why)
        return refuse(d->path, name, st, why);
    if (st->st_mode & 077) {
        if (fchmod(fd, 0600) != 0)
            return refuse(d->path, name, st, "readable by group or others, and its mode cannot be changed");
        pl__log(PL_LOG_WARNING, "keystore %s/%s: was readable by group or others (mode %04o): made 0600", d->path,
                name, (unsigned)(st->st_mode & 07777));
    }
    return PL_OK;
}

/* The names the directory store holds: item names other than "." and
 * "..", and without ".tmp." (which marks the temporary files of puts,
 * "<name>.tmp.<pid>", so a leftover is never taken for an item). The
 * keystore's own names ("identity", "peer.<hex>", "attempts.<hex>")
 * always qualify. */
static int dir_name_ok(const char *name)
{
    return pl__keystore_item_name_ok(name) && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
           !strstr(name, ".tmp.");
}

static int sync_dir(dir_store *d)
{
    return fsync(d->dirfd) == 0 ? PL_OK : PL_ERR_IO;
}

static int dir_get(void *ctx, const char *name, uint8_t **data, size_t *len)
{
    dir_store *d = ctx;
    if (!dir_name_ok(name))
        return PL_ERR_INVALID;
    /* O_NONBLOCK: a FIFO planted under an item's name must not hang us.
     * O_NOFOLLOW: an item is a file of the directory, never a link out of
     * it (check_item would change the mode of what it leads to). */
    int fd = openat(d->dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? PL_ERR_NOT_FOUND : errno == ELOOP ? PL_ERR_CORRUPT : PL_ERR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return PL_ERR_IO;
    }
    int rc = check_item(d, name, fd, &st);
    if (rc != PL_OK) {
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > PL_KEYSTORE_MAX_ITEM) {
        close(fd);
        return PL_ERR_CORRUPT;
    }
    /* Read up to one byte more than an item may hold, so a file that grew
     * after fstat is still caught. */
    uint8_t *buf = malloc(PL_KEYSTORE_MAX_ITEM + 1);
    if (!buf) {
        close(fd);
        return PL_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < PL_KEYSTORE_MAX_ITEM + 1) {
        ssize_t r = read(fd, buf + got, PL_KEYSTORE_MAX_ITEM + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            pl__wipe_free(buf, got);
            close(fd);
            errno = e;
            return PL_ERR_IO;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got > PL_KEYSTORE_MAX_ITEM) {
        pl__wipe_free(buf, got);
        return PL_ERR_CORRUPT;
    }
    *data = buf;
    *len = got;
    return PL_OK;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int dir_put(void *ctx, const char *name, const uint8_t *data, size_t len)
{
    dir_store *d = ctx;
    if (!dir_name_ok(name))
        return PL_ERR_INVALID;
    char tmp[PL_KEYSTORE_NAME_MAX + 32];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", name, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return PL_ERR_INVALID;
    /* O_NOFOLLOW: never truncate what a link planted under the temporary name points to. */
    int fd = openat(d->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return PL_ERR_IO;
    int ok = fchmod(fd, 0600) == 0 && write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && renameat(d->dirfd, tmp, d->dirfd, name) != 0) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlinkat(d->dirfd, tmp, 0);
        errno = e;
        return PL_ERR_IO;
    }
    return sync_dir(d);
}

static int dir_del(void *ctx, const char *name)
{
    dir_store *d = ctx;
    if (!dir_name_ok(name))
        return PL_ERR_INVALID;
    if (unlinkat(d->dirfd, name, 0) != 0)
        return errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO;
    return sync_dir(d);
}

static int dir_list(void *ctx, const char *prefix, int (*fn)(const char *name, void *arg),
                    void *arg)
{
    dir_store *d = ctx;
    /* A new open file description, so the listing starts at the beginning. */
    int fd = openat(d->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return PL_ERR_IO;
    DIR *dp = fdopendir(fd);
    if (!dp) {
        int e = errno;
        close(fd);
        errno = e;
        return PL_ERR_IO;
    }
    int rc = PL_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dp);
        if (!de) {
            if (errno != 0)
                rc = PL_ERR_IO;
            break;
        }
        /* Skips ".", "..", other files and "*.tmp.*" leftovers of puts. */
        if (!dir_name_ok(de->d_name) || !pl__has_prefix(de->d_name, prefix))
            continue;
        if (fn(de->d_name, arg) != 0)
            break;
    }
    int e = errno;
    closedir(dp);
    errno = e;
    return rc;
}

/* flock() on the directory itself: every keystore opened on it, in this
 * process or another, has its own open file description, so they
 * exclude one another. */
static int dir_lock(void *ctx, int on)
{
    dir_store *d = ctx;
    int rc;
    while ((rc = flock(d->dirfd, on ? LOCK_EX : LOCK_UN)) != 0 && errno == EINTR)
        ;
    return rc == 0 ? PL_OK : PL_ERR_IO;
}

static void dir_free(void *ctx)
{
    dir_store *d = ctx;
    if (!d)
        return;
    close(d->dirfd);
    free(d->path);
    free(d);
}

/* Check every item already there (see check_item), so that a keystore
 * someone else could have written is refused when it is opened rather than
 * in the middle of a handshake; dir_get checks each item again as it reads. */
typedef struct item_check {
    dir_store *d;
    int rc;
} item_check;

static int check_listed(const char *name, void *arg)
{
    item_check *c = arg;
    int fd = openat(c->d->dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0) {
        /* ENOENT: another keystore deleted it meanwhile; ELOOP: a link, which dir_get refuses */
        c->rc = errno == ENOENT || errno == ELOOP ? PL_OK : PL_ERR_IO;
        return c->rc != PL_OK;
    }
    struct stat st;
    c->rc = fstat(fd, &st) == 0 ? check_item(c->d, name, fd, &st) : PL_ERR_IO;
    int e = errno;
    close(fd);
    errno = e;
    return c->rc != PL_OK;
}

static int check_items(dir_store *d)
{
    item_check c = {d, PL_OK};
    int rc = dir_list(d, "", check_listed, &c);
    return rc != PL_OK ? rc : c.rc;
}

int pl_keystore_open_dir(const char *dir, pl_keystore **out)
{
    if (!dir || !*dir || !out)
        return PL_ERR_INVALID;
    int created = 0;
    if (mkdir(dir, 0700) == 0)
        created = 1;
    else if (errno != EEXIST)
        return PL_ERR_IO;
    /* A symbolic link to a directory is followed: what is checked below is
     * the directory it leads to, through the descriptor every operation uses. */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return PL_ERR_IO;
    dir_store *d = malloc(sizeof *d);
    char *path = pl__strdup(dir);
    if (!d || !path) {
        free(d);
        free(path);
        close(fd);
        return PL_ERR_NOMEM;
    }
    d->dirfd = fd;
    d->path = path;
    struct stat st;
    int rc = PL_OK;
    const char *why;
    /* The umask may have narrowed a new directory's mode; make it exactly 0700. */
    if (created && fchmod(fd, 0700) != 0)
        rc = PL_ERR_IO;
    else if (fstat(fd, &st) != 0)
        rc = PL_ERR_IO;
    else if ((why = foreign_writer(&st)) != NULL)
        rc = refuse(path, NULL, &st, why);
    else
        rc = check_items(d);
    if (rc == PL_OK) {
        static const pl_keystore_ops ops = {sizeof(pl_keystore_ops), dir_get, dir_put, dir_del, dir_list, dir_free};
        rc = pl_keystore_new(&ops, d, out);
    }
    if (rc != PL_OK) {
        int e = errno;
        dir_free(d);
        errno = e;
        return rc;
    }
    pl__keystore_set_lock(*out, dir_lock);
    return PL_OK;
}
