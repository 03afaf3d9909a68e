/*
 * fuzz_snapshot: snapshot restore (raft/fsm_restore.c) on arbitrary bytes.
 *
 * Properties: fsm_restore() never reads outside its input and leaks nothing; a refused
 * snapshot leaves the state machine unchanged (its state hash stays what it was) and a
 * message; an accepted one round-trips: the restored state
 * re-serialises (fsm_snapshot()) to bytes that restore again into a machine with the same
 * state hash, and that machine re-serialises to exactly the same bytes.
 *
 * The two machines live for the whole process (fsm_new() is slow enough to dominate a run):
 * restoring replaces the whole state, so what an earlier input left there cannot matter except
 * through fsm_restore() itself, which is what is under test.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/fsm.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char errmsg[256] = "";
    static struct fsm *f, *g;
    uint8_t *in = malloc(size ? size : 1);
    CHECK(in != NULL);
    memcpy(in, data, size);
    if (f == NULL) {
        CHECK(fsm_new(&f, NULL, errmsg, sizeof errmsg) == 0);
        CHECK(fsm_new(&g, NULL, errmsg, sizeof errmsg) == 0);
    }
    uint8_t before[32], hash[32];
    fsm_state_hash(f, before);

    int rc = fsm_restore(f, in, size, errmsg, sizeof errmsg);
    if (rc != 0) {
        CHECK(rc == FSM_EINVAL);
        CHECK(errmsg[0] != '\0');
        fsm_state_hash(f, hash);
        CHECK(memcmp(hash, before, 32) == 0); /* a refused snapshot changes nothing */
        goto done;
    }
    uint8_t *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    CHECK(fsm_snapshot(f, &s1, &l1, errmsg, sizeof errmsg) == 0);
    CHECK(fsm_restore(g, s1, l1, errmsg, sizeof errmsg) == 0);
    uint8_t hf[32], hg[32];
    fsm_state_hash(f, hf);
    fsm_state_hash(g, hg);
    CHECK(memcmp(hf, hg, 32) == 0);
    CHECK(fsm_snapshot(g, &s2, &l2, errmsg, sizeof errmsg) == 0);
    CHECK(l1 == l2 && memcmp(s1, s2, l1) == 0);
    free(s1);
    free(s2);
done:
    free(in);
    return 0;
}
