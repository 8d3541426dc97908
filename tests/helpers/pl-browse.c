/* SPDX-License-Identifier: ISC */
/*
 * pl-browse — a test helper that prints what a browser reports, one
 * event per line, with the library's event names (plcat's output is its
 * own and may change):
 *
 *   pl-browse [--backend NAME] [-t] TYPE
 *
 * prints "add NAME PORT N" (N addresses), "update NAME PORT N",
 * "remove NAME", "all-for-now" and "failed MESSAGE" on stdout. With -t it
 * exits 0 after "all-for-now" (as avahi-browse -t); else it runs until
 * killed. TYPE "_services._dns-sd._udp" lists the service types. Exit
 * status 1 on failure.
 */
#include <stdio.h>
#include <string.h>

#include <peerlink/peerlink.h>

typedef struct br {
    pl_loop *loop;
    int terminate;
    int status;
} br;

static void on_browse(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc, void *ud)
{
    br *s = ud;
    (void)b;
    switch (ev) {
    case PL_BROWSE_ADD:
    case PL_BROWSE_UPDATE:
        printf("%s %s %u %zu\n", ev == PL_BROWSE_ADD ? "add" : "update", svc->name, svc->port,
               svc->n_addresses);
        break;
    case PL_BROWSE_REMOVE:
        printf("remove %s\n", svc->name);
        break;
    case PL_BROWSE_ALL_FOR_NOW:
        printf("all-for-now\n");
        if (s->terminate)
            pl_loop_quit(s->loop);
        break;
    default:
        printf("failed %s\n", pl_strerror(status));
        s->status = 1;
        pl_loop_quit(s->loop);
        break;
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *backend = NULL;
    br s = {0};
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "-t") == 0)
            s.terminate = 1;
        else
            break;
    }
    if (i != argc - 1) {
        fprintf(stderr, "usage: pl-browse [--backend NAME] [-t] TYPE\n");
        return 2;
    }
    pl_discovery *d = NULL;
    pl_browser *b = NULL;
    int err = pl_loop_new(&s.loop);
    if (err == PL_OK)
        err = pl_discovery_new(pl_loop_get_poll(s.loop), backend, &d);
    if (err == PL_OK)
        err = pl_browse(d, argv[i], NULL, on_browse, &s, &b);
    if (err == PL_OK && pl_loop_run(s.loop) < 0)
        err = PL_ERR_IO;
    if (err != PL_OK) {
        fprintf(stderr, "pl-browse: %s\n", pl_strerror(err));
        s.status = 1;
    }
    pl_browser_free(b);
    pl_discovery_free(d);
    pl_loop_free(s.loop);
    return s.status;
}
