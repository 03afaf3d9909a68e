/* The state of one jsonschema_compile_ex() run, shared by jsonschema.c (keywords) and
 * jsonschema_ref.c (URIs, references, fetched documents), and the functions of jsonschema.c
 * that jsonschema_ref.c calls back. Private to the jsonschema*.c files. Like
 * jsonschema_node.h it includes nothing of jsonschema.h (see there). */
#ifndef CONCLAVE_JSONSCHEMA_COMPILE_H
#define CONCLAVE_JSONSCHEMA_COMPILE_H

#include <jansson.h>

#include "jsonschema/jsonschema_buf.h"
#include "jsonschema/jsonschema_node.h"

struct jsonschema_options;

/* Vocabularies whose keywords a custom meta-schema can switch off; the core, meta-data and
 * content keywords are always known. */
enum {
    VOC_APPLICATOR = 1 << 0, /* including the unevaluated vocabulary */
    VOC_VALIDATION = 1 << 1,
    VOC_FORMAT = 1 << 2,
    VOC_OTHER = 1 << 3,
    VOC_ALL = VOC_APPLICATOR | VOC_VALIDATION | VOC_FORMAT | VOC_OTHER,
    /* Not a group of keywords: the meta-schema lists the format-assertion vocabulary, so
     * "format" asserts whatever the caller's option says. */
    VOC_FORMAT_ASSERTION = 1 << 4,
};

/* Most documents one compiled schema may consist of: the schema and those the resolver
 * returned. Bounds the work a chain of remote references can cause. */
#define JSONSCHEMA_MAX_DOCUMENTS 64

/* The resolver hook of jsonschema.h, repeated here for the reason above. */
typedef json_t *(*jsonschema_cc_resolver_fn)(const char *uri, void *data);

struct compiler {
    struct jsonschema *s;
    const struct jsonschema_options *opts; /* never NULL; read by jsonschema.c only */
    jsonschema_cc_resolver_fn resolver;    /* opts->resolver, NULL when there is none */
    void *resolver_data;
    struct jsbuf path; /* JSON Pointer of the schema value being compiled, in document DOC */
    size_t doc;
    /* The resource the value being compiled belongs to; NULL while compiling the root of a
     * document, which becomes a resource with the URI BASE. */
    struct node *res;
    const char *base;
    unsigned dialect; /* one D* bit */
    /* The vocabularies in force (VOC_* bits): all of them, unless the "$schema" of the
     * enclosing resource is a meta-schema whose "$vocabulary" leaves some out. */
    unsigned vocabs;
    char *errmsg;
    size_t errlen;
};

int jsonschema_cc_nomem(struct compiler *cc);
/* Writes "at <current path>: <message>" and returns JSONSCHEMA_EBADSCHEMA. */
__attribute__((format(printf, 2, 3))) int jsonschema_cc_refuse(struct compiler *cc, const char *fmt,
                                                               ...);
/* Compiles the schema V found at the current path into a new node registered with the
 * compiled schema, which owns it whether or not compilation succeeds. */
int jsonschema_cc_node(struct compiler *cc, json_t *v, struct node **out);

/* Compiles DOC (borrowed), which the resolver returned for BASE, as a new document of the
 * compiled schema in DIALECT unless its "$schema" says otherwise. */
int jsonschema_cc_document(struct compiler *cc, json_t *doc, const char *base, unsigned dialect);

#endif
