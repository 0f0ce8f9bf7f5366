/* CZMQ's own zgossip hub (Debian's libczmq), for the gossip interop tests (tests/gossip.rs).
 *
 * Usage: czmq_hub ENDPOINT [CONNECT_ENDPOINT ...]
 * Binds a zgossip actor on ENDPOINT (and connects it to the other hubs given), prints
 * "ready" once bound, then one line per tuple the actor delivers: "deliver KEY VALUE".
 * Runs until SIGINT or SIGTERM. Exit status 2 on a usage or bind error.
 */
#include <czmq.h>

int main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: czmq_hub ENDPOINT [CONNECT_ENDPOINT ...]\n");
        return 2;
    }
    zactor_t *hub = zactor_new (zgossip, "hub");
    if (!hub)
        return 2;
    zstr_sendx (hub, "BIND", argv [1], NULL);
    for (int i = 2; i < argc; i++)
        zstr_sendx (hub, "CONNECT", argv [i], NULL);
    /* BIND is not acknowledged; PORT is not there for explicit endpoints. A STATUS round
       trip proves the actor took the commands above. */
    zstr_sendx (hub, "STATUS", NULL);
    char *status = zstr_recv (hub);
    if (!status) {
        zactor_destroy (&hub);
        return 2;
    }
    zstr_free (&status);
    printf ("ready\n");
    fflush (stdout);
    zpoller_t *poller = zpoller_new (hub, NULL);
    while (!zsys_interrupted) {
        void *which = zpoller_wait (poller, 100);
        if (which != hub)
            continue;
        char *command = NULL, *key = NULL, *value = NULL;
        if (zstr_recvx (hub, &command, &key, &value, NULL) < 0)
            break;
        if (command && streq (command, "DELIVER") && key && value) {
            printf ("deliver %s %s\n", key, value);
            fflush (stdout);
        }
        zstr_free (&command);
        zstr_free (&key);
        zstr_free (&value);
    }
    zpoller_destroy (&poller);
    zactor_destroy (&hub);
    return 0;
}
