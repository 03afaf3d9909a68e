/* URIs and references of the JSON Schema compiler (jsonschema_ref.c). Private to the
 * jsonschema*.c files. */
#ifndef CONCLAVE_JSONSCHEMA_REF_H
#define CONCLAVE_JSONSCHEMA_REF_H

#include "jsonschema/jsonschema_compile.h"

/* Adds N, whose path and document are set, to the index by path; the first node of a
 * (document, path) stays. */
int jsonschema_ref_index(struct compiler *cc, struct node *n);
/* Registers URI (borrowed, without fragment) with ANCHOR (borrowed, or NULL for the
 * resource itself) as naming NODE. The first registration of a name wins. */
int jsonschema_ref_register(struct compiler *cc, const char *uri, const char *anchor,
                            struct node *node);
/* The meta-schema URI names (absolute, borrowed), fetched through the resolver if need
 * be: sets *DIALECT to the dialect of its own "$schema" (unchanged when it has none) and
 * *VOCABS to the VOC_* bits of its "$vocabulary" (unchanged when it has none). Leaves both
 * unchanged when the meta-schema cannot be had. */
int jsonschema_ref_metaschema(struct compiler *cc, const char *uri, unsigned *dialect,
                              unsigned *vocabs);
/* Resolves every $ref, $dynamicRef and $recursiveRef, fetching documents through the
 * resolver and compiling the subschemas that only a JSON Pointer reaches, until none is left
 * (a bounded worklist: every node is visited once and documents are capped). */
int jsonschema_ref_resolve_all(struct compiler *cc);
/* Refuses a cycle of static references and in-place applicators (see
 * jsonschema_internal.h). */
int jsonschema_ref_check_cycles(struct compiler *cc);

#endif
