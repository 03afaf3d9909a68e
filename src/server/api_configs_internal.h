/*
 * The configs write module's private header, shared by its three files and included by
 * nothing else:
 *
 *   api_configs.c        the endpoints (create, put, delete, rollback) and their input
 *   api_configs_retry.c  recognising a retry: the fingerprint of what was asked, the state
 *                        machine's recent ids, and the revision PostgreSQL holds for an id
 *                        the state machine forgot
 *   api_configs_write.c  the checks against the leader's state, schema validation,
 *                        proposing, and every answer of a write
 *
 * A write request is a small state machine (struct write), owned by its api_call:
 *
 *   input ──► retry? ──► PostgreSQL behind? ──► early version check ──► schema (pool job) ──►
 *   propose (raft) ──► applied: outcome ──► materializer: in PostgreSQL ──► 200
 *
 * It includes none of the module's own files (docs/hacking.md).
 */
#ifndef CONCLAVE_API_CONFIGS_INTERNAL_H
#define CONCLAVE_API_CONFIGS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "raft/codec.h"
#include "raft/fsm.h"
#include "server/api_internal.h"

struct write {
    struct codec_entry e;
    char project[260];
    char key[260];
    char actor[128];
    char request_id[CODEC_MAX_REQUEST_ID + 1];
    char *content; /* canonical JSON, owned */
    size_t content_len;
    json_t *doc;           /* the parsed content, for schema validation; owned */
    bool schema_given;     /* the body named a schema_id (or null to unbind) */
    char schema_text[40];  /* the schema's UUID text, "" for none */
    char asked_schema[40]; /* the schema_id the body gave ("" when absent or null) */
    uint8_t fp[32];        /* fingerprint of what the client asked; also in e.fingerprint */
    json_t *first;         /* the revision PostgreSQL holds for the request id, or NULL */
    uint64_t index;        /* raft index of the applied entry */
    int ok_status;         /* 201 for create, 200 otherwise */
    /* The expected version came from If-Match or If-None-Match: a version mismatch answers
     * 412 precondition_failed instead of 409 conflict (RFC 9110 13.1). */
    bool precondition;
    struct fsm_result res; /* outcome, for the answer after materialization */
};

/* The Retry-After header of every 503 a write answers. */
extern const struct http_header api_configs_retry_after[];

/* Parses a schema UUID's text into its 16 bytes; false when TEXT is not a UUID. */
bool api_configs_parse_uuid(const char *text, uint8_t out[16]);

/* The body of a successful write (200/201): owned by the caller. */
json_t *api_configs_write_body(const struct write *w, uint64_t version, uint64_t revision,
                               uint64_t index);

/* Answers a retry from its first outcome (FIRST, VERSION, REVISION, INDEX); MISMATCH: the
 * request id was used for a different write (400). An OK first outcome is answered once
 * PostgreSQL holds it. */
void api_configs_answer_first(struct api_call *call, struct write *w, bool mismatch,
                              enum fsm_status first, uint64_t version, uint64_t revision,
                              uint64_t index);

/* Answers a retry from the state machine's record SEEN of its request id
 * (api_configs_retry.c). */
void api_configs_answer_recorded(struct api_call *call, struct write *w,
                                 const struct fsm_request *seen);

/* Answers 503 postgresql_behind and returns true while PostgreSQL lacks revisions the cluster
 * already trimmed; false (nothing answered) otherwise. */
bool api_configs_refused_behind(struct api_call *call);

/* The checks against this leader's state machine (a retry recorded meanwhile, the early
 * version check), then schema validation and proposing. Answers the call in every case. */
void api_configs_check_state(struct api_call *call);

/* Entry of every write once its input is read (api_configs_retry.c): fingerprints what was
 * asked, recognises a retry, else goes on to api_configs_check_state(). */
void api_configs_check_and_go(struct api_call *call);

#endif /* CONCLAVE_API_CONFIGS_INTERNAL_H */
