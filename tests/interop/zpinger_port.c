/*  zpinger_port.c: an LD_PRELOAD shim that moves Zyre's own bin/zpinger off port 5670.

    zpinger has no beacon port option: it always beacons on ZRE's default port 5670, which
    the tests never use. This shim wraps zyre_start, setting the port from ZRE_SHIM_PORT
    (required; 5670 refused: the process exits 3 before Zyre starts) and, if set, the
    beacon interval in milliseconds from ZRE_SHIM_INTERVAL; zpinger itself is unchanged.
    The lab (tests/lab/zyre.rs) builds it on demand:

      cc -shared -fPIC zpinger_port.c -o zpinger_port.so -L$P/lib -lzyre -ldl

    and runs `LD_PRELOAD=zpinger_port.so ZRE_SHIM_PORT=N zpinger -i veth0` in a namespace.
*/

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct _zyre_t zyre_t;
void zyre_set_port (zyre_t *self, int port_nbr);
void zyre_set_interval (zyre_t *self, size_t interval);

static long
env_number (const char *name, long lo, long hi)
{
    const char *s = getenv (name);
    char *end;
    long v = s ? strtol (s, &end, 10) : 0;
    if (!s || !*s || *end || v < lo || v > hi)
        return -1;
    return v;
}

int
zyre_start (zyre_t *self)
{
    int (*real) (zyre_t *) = (int (*) (zyre_t *)) dlsym (RTLD_NEXT, "zyre_start");
    long port = env_number ("ZRE_SHIM_PORT", 1, 65535);
    if (!real || port < 0 || port == 5670) {
        fputs ("zpinger_port: ZRE_SHIM_PORT must be a port other than 5670\n", stderr);
        _exit (3);          //  not exit: CZMQ's atexit handler asserts on the half-made node
    }
    zyre_set_port (self, (int) port);
    long interval = env_number ("ZRE_SHIM_INTERVAL", 1, 86400000);
    if (interval > 0)
        zyre_set_interval (self, (size_t) interval);
    return real (self);
}
