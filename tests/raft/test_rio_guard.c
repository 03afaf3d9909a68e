/*
 * raft/rio_guard.c against a fake inner io and a fake raft (the callbacks raft would run):
 * an accepted AppendEntries result is capped at the index its AppendEntries vouched for and
 * at what is persisted; a result tied to no message, or to another sender or term, claims 0;
 * rejections pass unchanged; truncations lower the persisted index at once and pending
 * appends past them do not raise it; load gives every entry a batch of its own; an
 * AppendEntries whose previous entry was compacted into the persisted snapshot is answered at
 * the snapshot.
 * The whole-system proof is tests/sim (test_sim_unguarded_fails and the seeds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>

#include "raft/rio_guard.h"

/* ---- the fake inner io ------------------------------------------------------------ */

static struct raft_message last_sent;
static unsigned n_sent;
static raft_io_recv_cb inner_recv;
static struct raft_io_append *inner_append_req;
static raft_io_append_cb inner_append_cb;
static unsigned n_loaded = 5;

static int fake_init(struct raft_io *io, raft_id id, const char *address)
{
    (void)io, (void)id, (void)address;
    return 0;
}

/* N_LOADED entries 1..N_LOADED in one batch, as raft_uv returns a segment's. */
static int fake_load(struct raft_io *io, raft_term *term, raft_id *vote,
                     struct raft_snapshot **snap, raft_index *start, struct raft_entry *entries[],
                     size_t *n)
{
    (void)io;
    *term = 3;
    *vote = 0;
    *snap = NULL;
    *start = 1;
    *n = n_loaded;
    *entries = raft_calloc(n_loaded, sizeof(**entries));
    char *batch = raft_malloc(n_loaded * 2);
    assert_non_null(*entries);
    assert_non_null(batch);
    for (unsigned i = 0; i < n_loaded; i++) {
        batch[2 * i] = (char)('a' + i);
        batch[2 * i + 1] = '!';
        (*entries)[i] = (struct raft_entry){.term = 1,
                                            .type = RAFT_COMMAND,
                                            .buf = {.base = batch + 2 * i, .len = 2},
                                            .batch = batch};
    }
    return 0;
}

static int fake_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                      raft_io_recv_cb recv)
{
    (void)io, (void)msecs, (void)tick;
    inner_recv = recv;
    return 0;
}

static int fake_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                     raft_io_send_cb cb)
{
    (void)io, (void)req, (void)cb;
    last_sent = *m;
    n_sent++;
    return 0;
}

static int fake_append(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    (void)io, (void)entries, (void)n;
    inner_append_req = req;
    inner_append_cb = cb;
    return 0;
}

static int fake_truncate(struct raft_io *io, raft_index index)
{
    (void)io, (void)index;
    return 0;
}

static int fake_snapshot_put(struct raft_io *io, unsigned trailing,
                             struct raft_io_snapshot_put *req, const struct raft_snapshot *snap,
                             raft_io_snapshot_put_cb cb)
{
    (void)io, (void)trailing, (void)req, (void)snap, (void)cb;
    fail_msg("snapshot_put is not exercised here");
    return RAFT_IOERR;
}

static void fake_io(struct raft_io *io)
{
    memset(io, 0, sizeof(*io));
    io->init = fake_init;
    io->load = fake_load;
    io->start = fake_start;
    io->send = fake_send;
    io->append = fake_append;
    io->truncate = fake_truncate;
    io->snapshot_put = fake_snapshot_put;
}

/* ---- the fake raft ---------------------------------------------------------------- */

/* What raft "sends" from inside recv or an append callback: an accepted result. */
struct reply_spec {
    bool armed;
    raft_id to;
    raft_term term;
    raft_index rejected, last;
};
static struct reply_spec reply;

static struct rio_guard guard;
static struct raft r;

static void send_result(raft_id to, raft_term term, raft_index rejected, raft_index last)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m.server_id = to;
    m.server_address = "x";
    m.append_entries_result.term = term;
    m.append_entries_result.rejected = rejected;
    m.append_entries_result.last_log_index = last;
    static struct raft_io_send req;
    assert_int_equal(guard.io.send(&guard.io, &req, &m, NULL), 0);
}

static struct raft_message last_recv; /* what raft got, as it got it */

static void raft_recv(struct raft_io *io, struct raft_message *m)
{
    assert_ptr_equal(io, &guard.io);
    last_recv = *m;
    if (reply.armed) {
        send_result(reply.to, reply.term, reply.rejected, reply.last);
    }
}

static void raft_append_done(struct raft_io_append *req, int status)
{
    (void)req;
    assert_int_equal(status, 0);
    if (reply.armed) {
        send_result(reply.to, reply.term, reply.rejected, reply.last);
    }
}

static void deliver_ae(raft_id from, raft_term term, raft_index prev, unsigned n)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.server_id = from;
    m.append_entries.term = term;
    m.append_entries.prev_log_index = prev;
    m.append_entries.n_entries = n;
    inner_recv(guard.inner, &m);
}

static raft_index sent_last(void)
{
    assert_int_equal(last_sent.type, RAFT_IO_APPEND_ENTRIES_RESULT);
    return last_sent.append_entries_result.last_log_index;
}

static struct raft_io inner;

/* A guard over the fake io, "raft_init"ed and started, having loaded entries 1..5. */
static int setup(void **state)
{
    (void)state;
    char err[128];
    fake_io(&inner);
    memset(&r, 0, sizeof(r));
    memset(&reply, 0, sizeof(reply));
    assert_int_equal(rio_guard_init(&guard, &inner, err, sizeof(err)), 0);
    r.io = &guard.io;
    guard.io.data = &r; /* what raft_init does */
    assert_int_equal(guard.io.init(&guard.io, 1, "1"), 0);
    assert_ptr_equal(inner.data, &r);
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap;
    raft_index start;
    struct raft_entry *entries;
    size_t n;
    assert_int_equal(guard.io.load(&guard.io, &term, &vote, &snap, &start, &entries, &n), 0);
    assert_int_equal(n, n_loaded);
    for (size_t i = 0; i < n; i++) {
        /* One batch per entry, the payload kept. */
        assert_ptr_equal(entries[i].batch, entries[i].buf.base);
        assert_int_equal(entries[i].buf.len, 2);
        assert_int_equal(((char *)entries[i].buf.base)[0], 'a' + (int)i);
        for (size_t j = 0; j < i; j++) {
            assert_ptr_not_equal(entries[i].batch, entries[j].batch);
        }
        raft_free(entries[i].batch);
    }
    raft_free(entries);
    assert_int_equal(guard.io.start(&guard.io, 100, NULL, raft_recv), 0);
    n_sent = 0;
    return 0;
}

static void test_caps_at_vouched_index(void **state)
{
    (void)state;
    reply = (struct reply_spec){.armed = true, .to = 2, .term = 3, .last = 5};
    deliver_ae(2, 3, 3, 0); /* a heartbeat checking index 3 only */
    assert_int_equal(n_sent, 1);
    assert_int_equal(sent_last(), 3);
    assert_int_equal(guard.capped, 1);
    deliver_ae(2, 3, 5, 0); /* one checking index 5: the claim stands */
    assert_int_equal(sent_last(), 5);
    assert_int_equal(guard.capped, 1);
    reply.rejected = 4; /* a rejection is not a claim: unchanged */
    deliver_ae(2, 3, 3, 0);
    assert_int_equal(sent_last(), 5);
    assert_int_equal(guard.unvouched, 0);
}

static void test_unvouched_claims_nothing(void **state)
{
    (void)state;
    send_result(2, 3, 0, 5); /* outside any message */
    assert_int_equal(sent_last(), 0);
    reply = (struct reply_spec){.armed = true, .to = 3, .term = 3, .last = 5};
    deliver_ae(2, 3, 5, 0); /* to another server than the sender */
    assert_int_equal(sent_last(), 0);
    reply.to = 2;
    reply.term = 4;
    deliver_ae(2, 3, 5, 0); /* in another term than the message's */
    assert_int_equal(sent_last(), 0);
    assert_int_equal(guard.unvouched, 3);
}

static void test_persisted_bounds_the_claim(void **state)
{
    (void)state;
    assert_int_equal(guard.io.truncate(&guard.io, 4), 0); /* 4..5 gone: persisted 3 */
    reply = (struct reply_spec){.armed = true, .to = 2, .term = 3, .last = 5};
    deliver_ae(2, 3, 5, 0);
    assert_int_equal(sent_last(), 3);
    /* raft appends 4..6 while handling an AppendEntries with prev 3 and 3 entries (it has
     * put them in its in-memory log first, which ends at 6). */
    reply.armed = false;
    r.log.offset = 6;
    struct raft_entry es[3];
    memset(es, 0, sizeof(es));
    struct raft_io_append req;
    /* recv runs raft_recv, which appends here through the guard: emulate by hand. */
    struct rio_guard_ctx saved = guard.ctx;
    guard.ctx = (struct rio_guard_ctx){.active = true, .from = 2, .term = 3, .vouch = 6};
    assert_int_equal(guard.io.append(&guard.io, &req, es, 3, raft_append_done), 0);
    guard.ctx = saved;
    /* Until it completes, nothing past 3 is claimed. */
    reply = (struct reply_spec){.armed = true, .to = 2, .term = 3, .last = 6};
    deliver_ae(2, 3, 6, 0);
    assert_int_equal(sent_last(), 3);
    /* Its completion answers that AppendEntries: 6 is vouched for and persisted. */
    inner_append_cb(inner_append_req, 0);
    assert_int_equal(sent_last(), 6);
    assert_int_equal(guard.persisted, 6);
    /* An append of 7..8 cut by a truncation at 8 before it completes counts up to 7. */
    reply.armed = false;
    r.log.offset = 8;
    assert_int_equal(guard.io.append(&guard.io, &req, es, 2, raft_append_done), 0);
    assert_int_equal(guard.io.truncate(&guard.io, 8), 0);
    inner_append_cb(inner_append_req, 0);
    assert_int_equal(guard.persisted, 7);
}

/* An AppendEntries of term TERM from server 2 with PREV and N entries in one batch, as
 * raft_uv decodes one; raft (here: the test) owns what it receives. */
static void deliver_ae_entries(raft_term term, raft_index prev, raft_term prev_term, unsigned n)
{
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.server_id = 2;
    m.append_entries.term = term;
    m.append_entries.prev_log_index = prev;
    m.append_entries.prev_log_term = prev_term;
    m.append_entries.n_entries = n;
    m.append_entries.entries = raft_calloc(n, sizeof(struct raft_entry));
    char *batch = raft_malloc(n);
    assert_non_null(m.append_entries.entries);
    assert_non_null(batch);
    for (unsigned i = 0; i < n; i++) {
        m.append_entries.entries[i] = (struct raft_entry){.term = term,
                                                          .type = RAFT_COMMAND,
                                                          .buf = {.base = batch + i, .len = 1},
                                                          .batch = batch};
    }
    inner_recv(guard.inner, &m);
}

/* What raft received is freed as raft would (the rebased ones carry nothing). */
static void free_received(void)
{
    if (last_recv.append_entries.n_entries > 0) {
        raft_free(last_recv.append_entries.entries[0].batch);
    }
    raft_free(last_recv.append_entries.entries);
    memset(&last_recv, 0, sizeof(last_recv));
}

/* This server persisted a snapshot up to 4 (term 2) and compacted 1..3. */
static void test_rebases_into_the_snapshot(void **state)
{
    (void)state;
    guard.snap = 4;
    r.log.snapshot.last_index = 4;
    r.log.snapshot.last_term = 2;
    r.current_term = 3;
    reply = (struct reply_spec){.armed = true, .to = 2, .term = 3, .last = 5};
    /* prev 2 is compacted: raft 0.15 would reject; it gets a heartbeat at 4 instead, and the
     * answer vouches for 4 (the entries 3..5 it carried are dropped, freed by the guard). */
    deliver_ae_entries(3, 2, 1, 3);
    assert_int_equal(last_recv.append_entries.prev_log_index, 4);
    assert_int_equal(last_recv.append_entries.prev_log_term, 2);
    assert_int_equal(last_recv.append_entries.n_entries, 0);
    assert_null(last_recv.append_entries.entries);
    assert_int_equal(sent_last(), 4);
    assert_int_equal(guard.rebased, 1);
    /* A later term too: that leader holds every committed entry as well. */
    deliver_ae_entries(4, 3, 2, 1);
    assert_int_equal(last_recv.append_entries.prev_log_index, 4);
    assert_int_equal(guard.rebased, 2);
    r.current_term = 4;
    /* Untouched: an older term (raft rejects it on the term), a previous entry at or past the
     * snapshot, and a snapshot raft holds that is not persisted yet (an install). */
    deliver_ae_entries(3, 2, 1, 2);
    assert_int_equal(last_recv.append_entries.prev_log_index, 2);
    assert_int_equal(last_recv.append_entries.n_entries, 2);
    free_received();
    deliver_ae_entries(4, 4, 2, 2);
    assert_int_equal(last_recv.append_entries.prev_log_index, 4);
    assert_int_equal(last_recv.append_entries.n_entries, 2);
    free_received();
    r.log.snapshot.last_index = 9;
    deliver_ae_entries(4, 2, 1, 2);
    assert_int_equal(last_recv.append_entries.prev_log_index, 2);
    free_received();
    assert_int_equal(guard.rebased, 2);
}

/* leader_commit never exceeds what the message proves (prev_log_index + n_entries), so raft
 * 0.15 cannot commit an unchecked tail of this server's log; a message that proves enough
 * passes unchanged. After a rebase the bound is the snapshot. */
static void test_bounds_the_commit_index(void **state)
{
    (void)state;
    r.current_term = 3;
    reply = (struct reply_spec){.armed = false};
    struct raft_message m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.server_id = 2;
    m.append_entries.term = 3;
    m.append_entries.prev_log_index = 3;
    m.append_entries.prev_log_term = 1;
    m.append_entries.leader_commit = 40;
    inner_recv(guard.inner, &m);
    assert_int_equal(last_recv.append_entries.leader_commit, 3);
    assert_int_equal(guard.commit_bounded, 1);
    /* Two entries prove up to 5. */
    deliver_ae_entries(3, 3, 1, 2);
    assert_int_equal(last_recv.append_entries.leader_commit, 0); /* the helper sends 0 */
    free_received();
    m.append_entries.leader_commit = 5;
    inner_recv(guard.inner, &m);
    assert_int_equal(last_recv.append_entries.leader_commit, 3);
    m.append_entries.prev_log_index = 5;
    m.append_entries.leader_commit = 5;
    inner_recv(guard.inner, &m);
    assert_int_equal(last_recv.append_entries.leader_commit, 5);
    assert_int_equal(guard.commit_bounded, 2);
    /* Rebased into a snapshot at 4: the message proves 4, whatever it claimed. */
    guard.snap = 4;
    r.log.snapshot.last_index = 4;
    r.log.snapshot.last_term = 2;
    m.append_entries.prev_log_index = 2;
    m.append_entries.leader_commit = 30;
    inner_recv(guard.inner, &m);
    assert_int_equal(last_recv.append_entries.prev_log_index, 4);
    assert_int_equal(last_recv.append_entries.leader_commit, 4);
    assert_int_equal(guard.commit_bounded, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_caps_at_vouched_index, setup),
        cmocka_unit_test_setup(test_unvouched_claims_nothing, setup),
        cmocka_unit_test_setup(test_persisted_bounds_the_claim, setup),
        cmocka_unit_test_setup(test_rebases_into_the_snapshot, setup),
        cmocka_unit_test_setup(test_bounds_the_commit_index, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
