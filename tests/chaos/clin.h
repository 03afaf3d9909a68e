/*
 * clin: linearizability of one key's history of CAS writes and reads (a versioned register).
 *
 * The state of a key is (version, value); a write with expected version E and value X takes
 * it from (E, any) to (E+1, X), a 409 conflict observes a version other than E, and a read
 * observes (V, X) or (0, none). Two independent checks:
 *
 *   clin_check_versions(): O(n log n) from the version numbers the server answered. Every
 *   operation gets a position: a write of version V sits at 2V, an observation of version V
 *   at 2V+1. The history is linearizable exactly when (1) no two writes claim one version,
 *   (2) every observed (V, X) is the value written as version V, and (3) no operation that
 *   completed before another began has a higher position (sorting by position is then a
 *   legal sequential order that respects real time).
 *
 *   clin_wgl(): a Wing-Gong search with Lowe's memoisation of (linearized set, state), which
 *   knows nothing of that argument; exponential in the worst case, so bounded by a step
 *   budget and meant for small histories.
 *
 * Operations with outcome unknown (no answer) may have taken effect at any time after their
 * invoke: for the version check an unknown write takes effect when some observation shows its
 * value (it then gets version E+1) and is otherwise left out; WGL may linearize it or not.
 * Reads that are not ok and writes that failed without a conflict answer have no effect.
 */
#ifndef CONCLAVE_CLIN_H
#define CONCLAVE_CLIN_H

#include <stddef.h>

#include "chist.h"

/* Called once per violation; KIND is one of the names listed in docs/reliability.md
 * ("stale read", "lost write", "duplicate version", "value never written", ...). */
typedef void (*clin_report_fn)(void *ud, const char *kind, const char *key, const char *msg);

/* Checks OPS[0..N), all of one key, by versions. Returns the number of violations reported
 * through REPORT, or -1 when out of memory. Does not modify OPS. */
long clin_check_versions(const struct chist_op *ops, size_t n, clin_report_fn report, void *ud);

enum clin_wgl_result { CLIN_LINEARIZABLE, CLIN_NOT_LINEARIZABLE, CLIN_TOO_BIG, CLIN_NOMEM };

/* Searches for a linearization of OPS[0..N) (one key) in at most MAX_STEPS steps, from the
 * state of a key that was never written. */
enum clin_wgl_result clin_wgl(const struct chist_op *ops, size_t n, size_t max_steps);

/* The same from the state (INIT_VERSION, INIT_VALUE) (INIT_VALUE NULL: none): a window of a
 * longer history that starts at a quiescent point (clin_check_history()). */
enum clin_wgl_result clin_wgl_from(const struct chist_op *ops, size_t n, int64_t init_version,
                                   const char *init_value, size_t max_steps);

/* Runs both checks on every key of H: versions always; WGL (unless WGL_MAX_OPS is 0, an
 * explicit opt-out) on each key split into windows at quiescent points (no operation with a
 * possible effect in flight; clin.c says why that is sound). A window with more than
 * WGL_MAX_OPS operations with a possible effect, or that needs more than WGL_MAX_STEPS steps,
 * is a violation ("linearizability not checked"), never a silent skip. Fills the counters and
 * reports violations (a WGL rejection the version check did not report is reported too, as
 * "not linearizable (wgl)"). Returns the number of violations, or -1 when out of memory. */
struct clin_summary {
    size_t keys;
    size_t wgl_windows;  /* windows given to WGL, over all keys */
    size_t wgl_largest;  /* operations with a possible effect in the largest window */
    size_t wgl_checked;  /* windows WGL decided */
    size_t wgl_too_big;  /* windows WGL could not decide (each one also a violation) */
    size_t wgl_rejected; /* windows WGL found not linearizable */
};
long clin_check_history(const struct chist *h, size_t wgl_max_ops, size_t wgl_max_steps,
                        struct clin_summary *sum, clin_report_fn report, void *ud);

#endif /* CONCLAVE_CLIN_H */
