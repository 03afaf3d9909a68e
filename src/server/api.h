/*
 * api: from an HTTP request to a handler, through routing, authentication and authorisation.
 *
 * Every request is an explicit little state machine (struct api_call):
 *
 *   route ──► authenticate ──► check access ──► (project routes) project role ──► handler
 *               │ cache or PostgreSQL job          │ cache or PostgreSQL job
 *               ▼                                  ▼
 *              401                            404 (no role), 403 (role too low)
 *
 * A handler validates its input with the helpers of api_input.c (400 naming the field) and
 * usually runs one PostgreSQL job through api_run(); the job's status maps to the HTTP answer in
 * one place. Everything runs on the loop thread except the work functions, which run on pool
 * workers.
 */
#ifndef CONCLAVE_API_H
#define CONCLAVE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "server/authcache.h"
#include "http/http_server.h"

struct node;
struct api_call;

typedef void (*api_handler_fn)(struct api_call *call);

/* A PostgreSQL job of a handler: runs on a pool worker, returns an enum db_status, stores what
 * to send in call->result and writes a user-facing message into ERRMSG on a 4xx outcome. */
typedef int (*api_work_fn)(PGconn *conn, struct api_call *call, char *errmsg, size_t errlen);

enum api_access {
    API_PUBLIC,         /* no token */
    API_SESSION,        /* a user's session; API keys are refused with 403 */
    API_INSTANCE_ADMIN, /* an instance admin's session */
    API_PROJECT,        /* a session with at least min_role in the project of the first path
                           parameter, or that project's API key when min_role <= editor */
};

/* What an API key limited to a config prefix (api_keys.config_prefix) may reach on a route.
 * authorize() in api.c enforces it before the handler runs, except API_REACH_BODY. */
enum api_reach {
    API_REACH_WHOLE = 0, /* the whole project (its history, audit, head): refused (the default) */
    API_REACH_PROJECT,   /* the project's own record: allowed */
    API_REACH_CKEY,      /* the config named by {ckey}: it must start with the prefix */
    API_REACH_QUERY,     /* configs chosen by ?prefix= or ?key=: one must be given, under it */
    API_REACH_BODY,      /* the config named by the body's "key": the handler checks it with
                          * api_key_reaches() */
};

struct api_route {
    const char *method;
    const char *pattern; /* "/v1/projects/{project}/roles/{user}": {project} is a slug,
                            every other parameter a UUID */
    enum api_access access;
    enum role_level min_role;
    api_handler_fn handler;
    enum api_reach reach; /* for API keys limited to a config prefix */
};

#define API_MAX_PARAMS 3

struct api_call {
    struct http_request *req; /* owned until answered */
    struct node *node;
    const struct api_route *route;
    char params[API_MAX_PARAMS][260]; /* decoded and validated path parameters */
    struct principal who;             /* the caller, for every route but API_PUBLIC */
    enum role_level role;             /* API_PROJECT: the caller's role in the project */
    uint64_t cache_gen;               /* auth cache generation when a lookup started */
    api_work_fn work;
    int ok_status;                 /* status sent when the work succeeds */
    json_t *result;                /* what to send then; NULL sends no body (204) */
    json_t *body;                  /* the parsed request body, when the handler asked for it */
    void *data;                    /* handler state, freed with free() when the call ends */
    void (*data_free)(void *data); /* when set, releases what DATA owns before its free() */
    char after[96];                /* the decoded ?after= cursor of api_input_page_start() */
    int page_limit;                /* api_input_page_start(): ?limit= */
    const char *page_after;        /* api_input_page_start(): ?after=, or NULL */
    bool invalidates_auth;         /* success changes who may do what: flush this node's cache */
    const char *err_field;         /* the body field a work function's 400/422 is about, or NULL */
    /* The caller authenticated with the console's session cookie (websession.h), not an
     * Authorization header. COOKIE_TOKEN is then its session token, which a follower forwards
     * as a bearer token; it is wiped when the call ends. */
    bool via_cookie;
    char cookie_token[128];
    char set_cookie[256]; /* when not empty, a Set-Cookie header for the success answer */
    /* A config write's phase timestamps (uv_hrtime() on the loop; 0 until reached), which
     * api_phases.c turns into the conclave_write_*_seconds histograms. Zero for every other
     * request: handler_ns is what marks a call as a write. */
    struct api_phases {
        uint64_t handler_ns;  /* the write handler was called */
        uint64_t forward_ns;  /* handed to the forwarding client (a follower) */
        uint64_t proposed_ns; /* rnode_apply was called and took the entry (the leader) */
        uint64_t applied_ns;  /* raft reported the entry applied */
        uint64_t outcome_ns;  /* the outcome to answer is known: the answer starts */
    } phases;
};

/* The node's HTTP handler: takes over REQ. DATA is the struct node. */
void api_handle(struct http_request *req, void *data);

/* Runs WORK on a pool worker and then DONE(status, errmsg, call) on the loop. If the pool
 * refuses the job, answers 503 and ends the call (DONE never runs). */
void api_submit(struct api_call *call, api_work_fn work,
                void (*done)(int status, const char *errmsg, void *call));

/* Answers the outcome of a work function the standard way (DB_OK: OK_STATUS with
 * call->result; DB_NOT_FOUND: 404; ...) and ends the call. */
void api_finish(struct api_call *call, int status, const char *errmsg);

/* Runs WORK on a pool worker; on DB_OK answers OK_STATUS with call->result. */
void api_run(struct api_call *call, api_work_fn work, int ok_status);

/* Answers an error and ends the call. */
void api_error(struct api_call *call, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers 400 bad_request with "field": FIELD in the body, and ends the call. */
void api_field_error(struct api_call *call, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends CALL after the handler answered its request itself (http_respond_*). */
void api_reply_done(struct api_call *call);

/* Answers STATUS with BODY (stolen; NULL sends no body) and ends the call. */
void api_reply(struct api_call *call, int status, json_t *body);

#endif /* CONCLAVE_API_H */
