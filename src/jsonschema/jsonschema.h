/* JSON Schema validation of configuration documents: draft 2020-12, and the dialects 2019-09,
 * 7, 6 and 4 chosen by "$schema".
 *
 * A schema is compiled once, when it is uploaded, and then validates any number of
 * documents. Compilation refuses what cannot be enforced as written: a keyword value of the
 * wrong type, a regular expression that does not compile, a reference that does not
 * resolve. Unknown keywords and formats are ignored, as the specification says, unless the
 * caller asks for strict mode (jsonschema_compile_ex()), which refuses them so that a typo
 * never turns into a check that silently does nothing. docs/jsonschema.md lists the keywords,
 * the dialects and the limits below. */
#ifndef CONCLAVE_JSONSCHEMA_H
#define CONCLAVE_JSONSCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* jsonschema_validate(): the document does not match the schema. */
#define JSONSCHEMA_INVALID 1
/* jsonschema_compile(): the schema is refused; the message says where and why. */
#define JSONSCHEMA_EBADSCHEMA (-1)
/* Either function: an allocation failed. */
#define JSONSCHEMA_ENOMEM (-2)

/* Most arrays and objects a schema or a document may nest, the outermost one counting as 1.
 * Deeper input is refused (compile) or reported invalid (validate) instead of being walked,
 * which bounds the C stack every recursive walk here uses. */
#define JSONSCHEMA_MAX_DEPTH 128
/* Most failures one validation reports; past it, one more entry with keyword "limit" says
 * the list is cut short, and validation stops. */
#define JSONSCHEMA_MAX_ERRORS 100
/* Most subschemas one validation may have in progress at once (nested $ref, allOf, items,
 * ...). Recursion through $ref that consumes the instance stops at JSONSCHEMA_MAX_DEPTH
 * anyway; this bounds long chains of $ref and is a second guard on the C stack. */
#define JSONSCHEMA_MAX_EVAL_DEPTH 512
/* Most subschema evaluations one validation may perform. A small schema can branch
 * exponentially (anyOf of two $refs at every level of a document); past this budget the
 * document is reported invalid with keyword "limit" instead of running for hours. */
#define JSONSCHEMA_MAX_STEPS 10000000L

/* A compiled schema. Immutable after jsonschema_compile() returns, so one compiled schema
 * may validate documents on several threads at once. */
struct jsonschema;

/* Compiles SCHEMA with the specification's defaults (jsonschema_compile_ex() with NULL
 * options: unknown keywords and formats ignored, "format" an annotation, no resolver, draft
 * 2020-12 unless "$schema" says otherwise). SCHEMA is borrowed, not modified; the compiled
 * schema keeps a private deep copy, so the caller may change or free SCHEMA afterwards. The
 * result goes to *OUT, which the caller frees with jsonschema_free(). On failure *OUT is
 * NULL, nothing is left allocated, ERRMSG holds
 * "at <JSON Pointer into SCHEMA>: <what is wrong>" (the pointer is "the root" for the whole
 * schema) or "out of memory", and the result is JSONSCHEMA_EBADSCHEMA or JSONSCHEMA_ENOMEM. */
int jsonschema_compile(const json_t *schema, struct jsonschema **out, char *errmsg, size_t errlen);

/* The dialects a schema may be written in. "$schema" at the root of a schema resource picks
 * one (the draft's meta-schema URI, with or without a trailing "#", http or https); without
 * it, jsonschema_options.default_dialect applies. */
enum jsonschema_dialect {
    JSONSCHEMA_DIALECT_DEFAULT = 0, /* draft 2020-12 */
    JSONSCHEMA_DRAFT2020_12,
    JSONSCHEMA_DRAFT2019_09,
    JSONSCHEMA_DRAFT7,
    JSONSCHEMA_DRAFT6,
    JSONSCHEMA_DRAFT4,
};

/* Fetches the schema whose absolute URI (without fragment) is URI, for a "$ref" to another
 * schema: returns a new reference to its JSON, which the compiler copies and releases, or NULL
 * when the URI is unknown (the $ref is then refused). DATA is jsonschema_options.resolver_data.
 * Called only during jsonschema_compile_ex(), on the calling thread, at most once per URI. */
typedef json_t *(*jsonschema_resolver_fn)(const char *uri, void *data);

/* Options of jsonschema_compile_ex(). Zero-initialized means the specification's defaults:
 * unknown keywords and formats are ignored, "format" is an annotation, no resolver, draft
 * 2020-12 unless "$schema" says otherwise. */
struct jsonschema_options {
    /* Refuse unknown keywords (with a "did you mean" hint), keywords of other drafts and
     * unknown formats at compile time, so that a typo never becomes a silent no-op. */
    bool strict;
    /* "format" asserts: a string that is not a valid instance of a known format fails. */
    bool format_assertion;
    jsonschema_resolver_fn resolver; /* NULL: every reference must stay inside the schema */
    void *resolver_data;
    enum jsonschema_dialect default_dialect;
};

/* jsonschema_compile() with OPTS (borrowed; NULL means all defaults). The result, ownership
 * and messages are those of jsonschema_compile(). */
int jsonschema_compile_ex(const json_t *schema, const struct jsonschema_options *opts,
                          struct jsonschema **out, char *errmsg, size_t errlen);

/* Frees S and everything it owns. S may be NULL. */
void jsonschema_free(struct jsonschema *s);

/* Validates DOC (borrowed, only read, so several threads may validate the same DOC) against
 * S. Returns 0 when DOC is valid; then *ERRORS (when ERRORS is not NULL) is set to NULL.
 * Returns JSONSCHEMA_INVALID when it is not; then, when ERRORS is not NULL, *ERRORS is a new
 * JSON array the caller owns (json_decref()) with one object per failure, in evaluation
 * order:
 *   {"path": "/a/0/b",             JSON Pointer into DOC, "" for the whole document
 *    "keyword": "minimum",         the failing keyword, or "false" for a false schema, or
 *                                  "limit" when a limit of this header was hit
 *    "schema_path": "/$defs/a/minimum",  JSON Pointer to the keyword in the schema, after
 *                                  following $ref
 *    "message": "must be >= 10, got 3"}
 * At most JSONSCHEMA_MAX_ERRORS failures are listed (plus one "limit" entry). Messages never
 * quote string values of DOC, which may be secrets; they do quote property names. When
 * ERRORS is NULL validation stops at the first failure. Returns JSONSCHEMA_ENOMEM, with
 * *ERRORS NULL, when an allocation fails. */
int jsonschema_validate(const struct jsonschema *s, const json_t *doc, json_t **errors);

#endif
