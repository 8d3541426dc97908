/* SPDX-License-Identifier: ISC */
/*
 * pl-probe — a test helper that drives the discovery API where plcat
 * has no switch for it (changing a TXT record while published).
 *
 *   pl-probe [--backend NAME] publish NAME TYPE PORT [KEY=VALUE | KEY]...
 *
 * (--backend picks the discovery backend, e.g. "mdns"; default: the
 * library's default)
 * prints "established NAME", "renamed NAME", "failed MESSAGE" and
 * "txt-updated" on stdout, one per line, and reads commands on stdin:
 * "txt KEY=VALUE..." replaces the TXT record, "quit" (or end of input)
 * withdraws and exits 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <peerlink/peerlink.h>

typedef struct probe {
    pl_loop *loop;
    pl_publication *pub;
    char line[4096];
    size_t have;
    int status;
} probe;

static int txt_from_words(pl_txt *txt, char **words, int n)
{
    for (int i = 0; i < n; i++) {
        char *eq = strchr(words[i], '=');
        if (eq)
            *eq = 0;
        int err = pl_txt_set_str(txt, words[i], eq ? eq + 1 : NULL);
        if (err != PL_OK)
            return err;
    }
    return PL_OK;
}

static void on_publish(pl_publication *p, pl_publish_event ev, int status, const char *name, void *ud)
{
    probe *pr = ud;
    if (ev == PL_PUBLISH_ESTABLISHED)
        printf("established %s\n", name);
    else if (ev == PL_PUBLISH_RENAMED)
        printf("renamed %s\n", name);
    else {
        printf("failed %s\n", pl_strerror(status));
        pr->status = 1;
        pl_loop_quit(pr->loop);
    }
    fflush(stdout);
}

static void command(probe *pr, char *cmd)
{
    char *words[64];
    int n = 0;
    for (char *tok = strtok(cmd, " \t"); tok && n < 64; tok = strtok(NULL, " \t"))
        words[n++] = tok;
    if (n == 0)
        return;
    if (strcmp(words[0], "quit") == 0) {
        pl_loop_quit(pr->loop);
    } else if (strcmp(words[0], "txt") == 0) {
        pl_txt *txt = NULL;
        int err = pl_txt_new(&txt);
        if (err == PL_OK)
            err = txt_from_words(txt, words + 1, n - 1);
        if (err == PL_OK)
            err = pl_publication_set_txt(pr->pub, txt);
        pl_txt_free(txt);
        printf(err == PL_OK ? "txt-updated\n" : "failed %s\n", pl_strerror(err));
        fflush(stdout);
    } else {
        printf("failed unknown command %s\n", words[0]);
        fflush(stdout);
    }
}

static void on_stdin(pl_watch *w, int fd, unsigned events, void *ud)
{
    probe *pr = ud;
    ssize_t n = read(fd, pr->line + pr->have, sizeof pr->line - 1 - pr->have);
    if (n <= 0) {
        if (n < 0 && errno == EINTR)
            return;
        pl_loop_quit(pr->loop);
        return;
    }
    pr->have += (size_t)n;
    char *nl;
    while ((nl = memchr(pr->line, '\n', pr->have))) {
        *nl = 0;
        size_t used = (size_t)(nl - pr->line) + 1;
        command(pr, pr->line);
        memmove(pr->line, pr->line + used, pr->have - used);
        pr->have -= used;
    }
    if (pr->have == sizeof pr->line - 1)
        pr->have = 0; /* an over-long line is dropped */
}

int main(int argc, char **argv)
{
    const char *backend = NULL;
    if (argc >= 3 && strcmp(argv[1], "--backend") == 0) {
        backend = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc < 5 || strcmp(argv[1], "publish") != 0) {
        fprintf(stderr, "usage: pl-probe [--backend NAME] publish NAME TYPE PORT [KEY=VALUE | KEY]...\n");
        return 2;
    }
    probe pr = {0};
    pl_discovery *d = NULL;
    pl_txt *txt = NULL;
    if (pl_loop_new(&pr.loop) != PL_OK || pl_txt_new(&txt) != PL_OK)
        return 1;
    const pl_poll *poll = pl_loop_get_poll(pr.loop);
    int err = txt_from_words(txt, argv + 5, argc - 5);
    if (err == PL_OK)
        err = pl_discovery_new(poll, backend, &d);
    if (err == PL_OK)
        err = pl_publish(d, argv[2], argv[3], (uint16_t)atoi(argv[4]), txt, on_publish, &pr, &pr.pub);
    pl_txt_free(txt);
    if (err != PL_OK) {
        printf("failed %s\n", pl_strerror(err));
        return 1;
    }
    pl_watch *w = poll->watch_new(poll, STDIN_FILENO, PL_WATCH_IN, on_stdin, &pr);
    pl_loop_run(pr.loop);
    poll->watch_free(w);
    pl_discovery_free(d);
    pl_loop_free(pr.loop);
    return pr.status;
}
