/*
 * logfmt: the node's log as JSON lines (docs/operations.md, "Logs"), and log levels.
 *
 * Every part of the node (raft glue, storage, HTTP, API) writes one line per event to stderr,
 * as "component: what happened". Rather than thread a logger through every layer, the node,
 * when asked for JSON (log.format) or a level above info (log.level), turns its own stderr into
 * a pipe: a thread reads it line by line, gives each line a level and a component, drops the
 * lines below the level, and writes the rest to the real stderr, as text or as one JSON
 * object per line. The lines keep their order; nothing is lost while the process lives (the
 * pipe blocks a writer when full, as a slow terminal would).
 *
 * Levels: "error" for a line that says the node stops or a request failed inside the server
 * (fatal, internal error), "warn" for one that reports a failure the node survives (failed,
 * refused, cannot, lost, behind, ahead, stalled, warning), "info" for everything else,
 * including the access log (component "access").
 */
#ifndef CONCLAVE_LOGFMT_H
#define CONCLAVE_LOGFMT_H

#include <stdbool.h>
#include <stddef.h>

enum logfmt_level {
    LOGFMT_INFO = 0,
    LOGFMT_WARN = 1,
    LOGFMT_ERROR = 2,
};

/* "info", "warn" or "error" into *OUT; -1 for anything else. */
int logfmt_parse_level(const char *s, enum logfmt_level *out);

/* LINE's level (see above). */
enum logfmt_level logfmt_level_of(const char *line);

/*
 * LINE (no newline) as one JSON object and a newline, in a new string the caller frees:
 * {"time": RFC 3339 UTC with milliseconds of EPOCH_MS, "level", "node": NODE_ID, "component",
 * "msg"}. The component is the text before the first ": " when it is a short name (letters,
 * digits, spaces, '_' and '-', at most 32 bytes; "node 3" becomes "node"), else "conclave";
 * an access log line ("http method=M path=P status=S ms=T rid=R") has component "access" and
 * its pairs as fields (status and ms as numbers). NULL when out of memory.
 */
char *logfmt_json(const char *line, unsigned node_id, double epoch_ms);

/* Starts the pipe and its thread for this process (see above): JSON lines when JSON, and only
 * lines at MIN_LEVEL or above. Returns 0, or -1 with ERRMSG (stderr is then unchanged). */
int logfmt_start(bool json, enum logfmt_level min_level, unsigned node_id, char *errmsg,
                 size_t errlen);

/* Puts the real stderr back and waits until the thread wrote every line (at the process's
 * end). Does nothing when logfmt_start() was not called. */
void logfmt_stop(void);

#endif /* CONCLAVE_LOGFMT_H */
