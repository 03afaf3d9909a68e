/* The simulated cluster: set-up, the run loop, healing and convergence (sim.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void *sim_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "test_raft_sim: out of memory\n");
        abort();
    }
    return p;
}

void sim_trace(struct sim *s, const char *fmt, ...)
{
    if (!s->o.verbose) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[seed %llu t=%llu step %lu] ", (unsigned long long)s->o.seed,
            (unsigned long long)s->f.time, s->step);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
    if (s->failed) {
        return; /* keep the first violation */
    }
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    sim_trace(s, "VIOLATION: %s", s->why);
}

struct raft *sim_raft(struct sim *s, unsigned i)
{
    return raft_fixture_get(&s->f, i);
}

static void watch_leader(struct sim *s)
{
    unsigned l = raft_fixture_leader_index(&s->f);
    if (l != s->last_leader) {
        if (l < s->o.n) {
            s->st.elections++;
            sim_trace(s, "stable leader: server %u, term %llu", l,
                      (unsigned long long)sim_raft(s, l)->current_term);
        }
        s->last_leader = l;
    }
}

static int sim_init(struct sim *s, const struct sim_opts *o)
{
    memset(s, 0, sizeof(*s));
    s->o = *o;
    rng_seed(&s->rng, o->seed * 2 + o->n);
    s->chaos = 1 + rng_index(&s->rng, 4);
    s->last_leader = o->n;
    char err[256];
    if (raft_fixture_initialize(&s->f) != 0) {
        return -1;
    }
    unsigned threshold = 4 + rng_index(&s->rng, 40);
    unsigned trailing = 1 + rng_index(&s->rng, 12);
    s->threshold = threshold;
    s->trailing = trailing;
    for (unsigned i = 0; i < o->n; i++) {
        struct node *nd = &s->nodes[i];
        if (fsm_new(&nd->fsm, NULL, err, sizeof(err)) != 0) {
            fprintf(stderr, "fsm_new: %s\n", err);
            return -1;
        }
        rfsm_init(&nd->ad, nd->fsm, NULL);
        nd->sim = s;
        nd->idx = i;
        sim_io_wrap_fsm(nd);
        if (raft_fixture_grow(&s->f, &nd->ad.raft_fsm) != 0) {
            return -1;
        }
        struct raft *r = raft_fixture_get(&s->f, i);
        nd->ad.raft = r;
        if (o->raft_trace) {
            sim_io_trace(nd, r);
        }
        raft_set_snapshot_threshold(r, threshold);
        raft_set_snapshot_trailing(r, trailing);
        unsigned timeout = 1000 + rng_index(&s->rng, 1000);
        if (o->scripted) {
            /* Server 0 times out first, by far: the scripts start from a known leader. */
            timeout = i == 0 ? 1000 : 100000;
        }
        raft_fixture_set_randomized_election_timeout(&s->f, i, timeout);
        raft_fixture_set_network_latency(&s->f, i, 5 + rng_index(&s->rng, 30));
        sim_disk_install(nd, r->io, 2 + rng_index(&s->rng, 20));
        if (!o->unguarded) {
            /* As in raft/rnode.c: raft talks to the guard, the guard to the (simulated) io.
             * The fixture already ran raft_init on its io, so the guard is put in place of it
             * here; a restart (sim_crash) runs raft_init on the guard. */
            if (rio_guard_init(&nd->guard, r->io, err, sizeof(err)) != 0) {
                fprintf(stderr, "test_raft_sim: %s\n", err);
                return -1;
            }
            nd->guard.io.data = r;
            r->io = &nd->guard.io;
            sim_reads_init(nd, r);
        }
        /* As rnode runs it, now that the io has async_work (sim_disk_install); raft reads
         * the fsm's version only when it takes a snapshot. */
        rfsm_async_snapshots(&nd->ad);
        sim_io_wrap_async(nd);
        s->alive[i] = true;
    }
    struct raft_configuration conf;
    if (raft_fixture_configuration(&s->f, o->n, &conf) != 0) {
        return -1;
    }
    int rv = raft_fixture_bootstrap(&s->f, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 || raft_fixture_start(&s->f) != 0) {
        return -1;
    }
    sim_trace(s, "%u servers, snapshot threshold %u trailing %u, chaos %u", o->n, threshold,
              trailing, s->chaos);
    return 0;
}

static void sim_close(struct sim *s)
{
    s->closing = true;
    for (unsigned i = 0; i < s->o.n; i++) {
        sim_reads_stop(s, i);
    }
    raft_fixture_close(&s->f);
    sim_reads_free(s);
    while (s->props != NULL) {
        struct prop *p = s->props;
        s->props = p->next;
        free(p->bytes);
        free(p);
    }
    for (unsigned i = 0; i < s->o.n; i++) {
        fsm_free(s->nodes[i].fsm);
        s->nodes[i].fsm = NULL;
        sim_disk_free(&s->nodes[i]);
    }
    sim_checks_ledger_free(&s->ledger);
    free(s->commits);
    s->commits = NULL;
}

/* True when one leader is ready in its term, has committed its whole log, and every server
 * follows it and has applied everything. */
static bool converged(struct sim *s)
{
    unsigned l = s->o.n;
    for (unsigned i = 0; i < s->o.n; i++) {
        if (sim_raft(s, i)->state == RAFT_LEADER) {
            if (l != s->o.n) {
                return false;
            }
            l = i;
        }
    }
    if (l == s->o.n) {
        return false;
    }
    struct raft *lr = sim_raft(s, l);
    if (s->nodes[l].ready_term != lr->current_term || raft_last_index(lr) != lr->commit_index) {
        return false;
    }
    for (unsigned i = 0; i < s->o.n; i++) {
        struct raft *r = sim_raft(s, i);
        if (r->current_term != lr->current_term || r->last_applied != lr->commit_index ||
            (i != l && r->state != RAFT_FOLLOWER)) {
            return false;
        }
    }
    return true;
}

/* Prints each server's raft state and, for a leader, its view of every follower (verbose
 * runs and convergence failures). */
static void dump_cluster(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n; i++) {
        struct raft *r = sim_raft(s, i);
        fprintf(stderr,
                "  server %u: state %d term %llu voted %llu last_index %llu stored %llu commit "
                "%llu applied %llu snapshot %llu/%llu log offset %llu fsm applied %llu\n",
                i, r->state, (unsigned long long)r->current_term, (unsigned long long)r->voted_for,
                (unsigned long long)raft_last_index(r), (unsigned long long)r->last_stored,
                (unsigned long long)r->commit_index, (unsigned long long)r->last_applied,
                (unsigned long long)r->log.snapshot.last_index,
                (unsigned long long)r->log.snapshot.last_term, (unsigned long long)r->log.offset,
                (unsigned long long)fsm_last_applied(s->nodes[i].fsm));
        fprintf(stderr, "    alive %d, links out:", s->alive[i]);
        for (unsigned j = 0; j < s->o.n; j++) {
            if (j != i) {
                fprintf(stderr, " ->%u %s", j,
                        raft_fixture_saturated(&s->f, i, j) ? "saturated" : "ok");
            }
        }
        fprintf(stderr, "; sent ae %u aer %u is %u; received ae %u aer %u is %u\n",
                raft_fixture_n_send(&s->f, i, RAFT_IO_APPEND_ENTRIES),
                raft_fixture_n_send(&s->f, i, RAFT_IO_APPEND_ENTRIES_RESULT),
                raft_fixture_n_send(&s->f, i, RAFT_IO_INSTALL_SNAPSHOT),
                raft_fixture_n_recv(&s->f, i, RAFT_IO_APPEND_ENTRIES),
                raft_fixture_n_recv(&s->f, i, RAFT_IO_APPEND_ENTRIES_RESULT),
                raft_fixture_n_recv(&s->f, i, RAFT_IO_INSTALL_SNAPSHOT));
        if (r->state == RAFT_LEADER) {
            for (unsigned j = 0; j < r->configuration.n; j++) {
                struct raft_progress *pr = &r->leader_state.progress[j];
                fprintf(stderr,
                        "    progress of %llu: state %u next %llu match %llu snapshot %llu "
                        "last_send %llu snapshot_last_send %llu recent %d\n",
                        (unsigned long long)r->configuration.servers[j].id, pr->state,
                        (unsigned long long)pr->next_index, (unsigned long long)pr->match_index,
                        (unsigned long long)pr->snapshot_index, (unsigned long long)pr->last_send,
                        (unsigned long long)pr->snapshot_last_send, pr->recent_recv);
            }
        }
    }
}

void sim_crash(struct sim *s, unsigned i)
{
    struct node *nd = &s->nodes[i];
    struct raft *r = sim_raft(s, i);
    struct raft_fixture_server *fs = &s->f.servers[i];
    bool leader = r->state == RAFT_LEADER;
    if (s->alive[i]) {
        raft_fixture_kill(&s->f, i);
        s->alive[i] = false;
    }
    /* raft_close answers every pending request (the client sees an unknown outcome) and the
     * disk drops what it had not completed. The memory image goes with the process: a new
     * state machine, a new raft, and only the disk survives. */
    nd->disk.crashing = true;
    sim_reads_stop(s, i);
    raft_close(r, NULL);
    fsm_free(nd->fsm);
    nd->fsm = NULL;
    char err[256];
    if (fsm_new(&nd->fsm, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_raft_sim: fsm_new: %s\n", err);
        abort();
    }
    rfsm_init(&nd->ad, nd->fsm, NULL);
    rfsm_async_snapshots(&nd->ad);
    sim_io_wrap_fsm(nd);
    sim_io_wrap_async(nd);
    struct raft_io *io = s->o.unguarded ? &fs->io : &nd->guard.io;
    if (raft_init(r, io, &nd->ad.raft_fsm, fs->id, fs->address) != 0) {
        fprintf(stderr, "test_raft_sim: raft_init of restarted server %u failed\n", i);
        abort();
    }
    nd->ad.raft = r;
    if (!s->o.unguarded) {
        sim_reads_init(nd, r);
    }
    /* The fixture's defaults, which raft_init reset. */
    raft_set_election_timeout(r, 1000);
    raft_set_heartbeat_timeout(r, 100);
    raft_set_snapshot_threshold(r, s->threshold);
    raft_set_snapshot_trailing(r, s->trailing);
    if (s->o.raft_trace) {
        sim_io_trace(nd, r);
    }
    nd->last_noted = 0;
    nd->ready_term = 0;
    nd->barrier_pending = false;
    nd->crashes++;
    s->commit_seen[i] = 0;
    s->leader_checked[i] = 0;
    s->leader_checked_upto[i] = 0;
    s->st.crashes++;
    int rv = raft_start(r);
    if (rv != 0) {
        sim_fail(s, "server %u could not restart from its disk: %s (%s)", i, raft_strerror(rv),
                 raft_errmsg(r));
    }
    sim_trace(s, "crash server %u (%s), restarted from its disk: term %llu, last index %llu", i,
              leader ? "leader" : "not leader", (unsigned long long)r->current_term,
              (unsigned long long)raft_last_index(r));
    sim_faults_sync_links(s);
}

unsigned sim_sole_leader(struct sim *s)
{
    unsigned l = s->o.n;
    for (unsigned i = 0; i < s->o.n; i++) {
        if (sim_raft(s, i)->state == RAFT_LEADER) {
            if (l != s->o.n) {
                return s->o.n;
            }
            l = i;
        }
    }
    return l;
}

static void heal_and_converge(struct sim *s)
{
    for (unsigned i = 0; i < s->o.n; i++) {
        if (!s->alive[i]) {
            raft_fixture_revive(&s->f, i);
            s->alive[i] = true;
        }
        for (unsigned j = 0; j < s->o.n; j++) {
            s->cut[i][j] = false;
            s->loss_until[i][j] = 0;
        }
    }
    sim_faults_sync_links(s);
    sim_trace(s, "healed: all servers alive, all links up");
    raft_time start = s->f.time;
    while (!s->failed && !converged(s)) {
        sim_faults_shuffle_timeouts(s);
        if (s->f.time - start > HEAL_STALL_MSECS) {
            /* Not converged for long: a failure. raft 0.15's stale-snapshot stall is named
             * (sim_checks_snapshot_stalls); a false match claim already failed the run. */
            if (sim_checks_snapshot_stalls(s) > 0) {
                sim_fail(s, "a follower stalled on a stale snapshot (raft 0.15 defect)");
                return;
            }
            if (s->o.verbose) {
                dump_cluster(s);
            }
            char states[160] = "";
            size_t off = 0;
            for (unsigned i = 0; i < s->o.n && off < sizeof(states); i++) {
                struct raft *r = sim_raft(s, i);
                off += (size_t)snprintf(states + off, sizeof(states) - off, " %u:%d/t%llu/a%llu", i,
                                        r->state, (unsigned long long)r->current_term,
                                        (unsigned long long)r->last_applied);
            }
            sim_fail(s, "the healed cluster did not converge in %llu ms (state/term/applied:%s)",
                     (unsigned long long)(s->f.time - start), states);
            return;
        }
        sim_load_barriers(s);
        raft_fixture_step(&s->f);
        sim_disk_pump(s);
        sim_reads_tick(s);
        s->step++;
        watch_leader(s);
        (void)sim_checks_match_claims(s);
        sim_checks_commits(s);
        sim_checks_unavailable(s);
    }
}

int sim_setup(struct sim *s, const struct sim_opts *o)
{
    if (sim_init(s, o) != 0) {
        snprintf(s->why, sizeof(s->why), "setting up the fixture failed");
        s->setup_failed = true;
        sim_close(s);
        return -1;
    }
    return 0;
}

void sim_tick(struct sim *s)
{
    if (!s->o.raw) {
        sim_load_barriers(s);
    }
    raft_fixture_step(&s->f);
    sim_disk_pump(s);
    sim_reads_tick(s);
    s->step++;
    watch_leader(s);
    (void)sim_checks_match_claims(s);
    sim_checks_commits(s);
    sim_checks_unavailable(s);
}

int sim_finish(struct sim *s)
{
    if (!s->failed) {
        heal_and_converge(s);
    }
    if (!s->failed) {
        sim_checks_final(s);
    }
    s->st.runs = 1;
    s->st.steps = s->step;
    sim_close(s);
    return s->failed ? -1 : 0;
}

int sim_run(struct sim *s, const struct sim_opts *o)
{
    if (sim_init(s, o) != 0) {
        snprintf(s->why, sizeof(s->why), "setting up the fixture failed");
        s->setup_failed = true;
        sim_close(s);
        return -1;
    }
    for (s->step = 0; s->step < o->steps && !s->failed; s->step++) {
        sim_faults_inject(s);
        if (!s->o.raw) {
            sim_load_barriers(s);
        }
        sim_load_client(s);
        sim_reads_client(s);
        raft_fixture_step(&s->f);
        sim_disk_pump(s);
        sim_reads_tick(s);
        watch_leader(s);
        (void)sim_checks_match_claims(s);
        sim_checks_commits(s);
        sim_checks_unavailable(s);
    }
    if (!s->failed) {
        heal_and_converge(s);
    }
    if (!s->failed) {
        sim_checks_final(s);
    }
    s->st.runs = 1;
    s->st.steps = s->step;
    sim_close(s);
    for (unsigned i = 0; i < s->o.n && !s->o.unguarded; i++) {
        s->st.guard_capped += s->nodes[i].guard.capped;
        s->st.guard_unvouched += s->nodes[i].guard.unvouched;
        s->st.guard_rebased += s->nodes[i].guard.rebased;
        s->st.guard_commit_bounded += s->nodes[i].guard.commit_bounded;
    }
    return s->failed ? -1 : 0;
}

void sim_stats_add(struct stats *a, const struct stats *b)
{
    a->runs += b->runs;
    a->steps += b->steps;
    a->proposals += b->proposals;
    a->acked += b->acked;
    a->unknown += b->unknown;
    a->unknown_committed += b->unknown_committed;
    a->rejected += b->rejected;
    a->retries += b->retries;
    a->retry_dups += b->retry_dups;
    a->snapshots += b->snapshots;
    a->sealed += b->sealed;
    a->sealed_after_applies += b->sealed_after_applies;
    a->restores += b->restores;
    a->kills += b->kills;
    a->crashes += b->crashes;
    a->partitions += b->partitions;
    a->cuts += b->cuts;
    a->losses += b->losses;
    a->elections += b->elections;
    a->applies += b->applies;
    a->transfers += b->transfers;
    a->guard_capped += b->guard_capped;
    a->guard_unvouched += b->guard_unvouched;
    a->guard_rebased += b->guard_rebased;
    a->guard_commit_bounded += b->guard_commit_bounded;
    a->reads_served += b->reads_served;
    a->reads_failed += b->reads_failed;
    a->read_rounds += b->read_rounds;
    for (unsigned i = 0; i < 3; i++) {
        a->reads_failed_by[i] += b->reads_failed_by[i];
    }
}
