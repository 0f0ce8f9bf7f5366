/* How tests/golden/zcert/ was made: CZMQ's own zcert_save (Debian's libczmq 4.2.1) on
 * the key pairs of libzmq's zmq_curve(7) example, one with metadata.
 *   cc make_golden.c -o make_golden -lczmq -lzmq && ./make_golden
 * writes server.cert, server.cert_secret, client.cert, client.cert_secret here. */
#include <czmq.h>

static zcert_t *from_z85(const char *public_txt, const char *secret_txt) {
    byte public_key[32], secret_key[32];
    zmq_z85_decode(public_key, public_txt);
    zmq_z85_decode(secret_key, secret_txt);
    return zcert_new_from(public_key, secret_key);
}

int main(void) {
    zcert_t *server = from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
                               "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6");
    zcert_set_meta(server, "name", "%s", "server");
    zcert_set_meta(server, "organization", "%s", "zre tests");
    zcert_save(server, "server.cert");
    zcert_t *client = from_z85("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID",
                               "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs");
    zcert_save(client, "client.cert");
    zcert_destroy(&server);
    zcert_destroy(&client);
    return 0;
}
