/* The compiled form of a JSON Schema: the node tree jsonschema.c and jsonschema_ref.c build
 * and jsonschema_validate.c walks. Private to the jsonschema*.c files; the invariants are in
 * jsonschema_internal.h. Includes nothing of jsonschema.h, so that the compile-time modules
 * (jsonschema_ref.c) can use it without an include loop. */
#ifndef CONCLAVE_JSONSCHEMA_NODE_H
#define CONCLAVE_JSONSCHEMA_NODE_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <pcre2.h>

#include "jsonschema/jsonschema_format.h"

struct node;

struct nodelist {
    struct node **v; /* owned array; the nodes belong to struct jsonschema */
    size_t n;
};

/* A property name (borrowed from the schema copy, LEN bytes) and its subschema. */
struct named {
    const char *name;
    size_t len;
    struct node *schema;
};

/* Sorted by name (bytes, then length), so a document key is found by binary search. */
struct namedlist {
    struct named *v; /* owned array */
    size_t n;
};

struct patprop {
    pcre2_code *re;     /* owned */
    const char *source; /* borrowed */
    struct node *schema;
};

/* Dialect bits, for the keyword table: a keyword exists in the dialects whose bits it has. */
enum {
    D2020 = 1 << 0,
    D2019 = 1 << 1,
    D7 = 1 << 2,
    D6 = 1 << 3,
    D4 = 1 << 4,
    DALL = D2020 | D2019 | D7 | D6 | D4,
};

/* A dynamic anchor of a schema resource ($dynamicAnchor), by name. */
struct dynanchor {
    const char *name; /* borrowed from the schema JSON */
    struct node *node;
};

/* One subschema. An absent keyword is NULL, 0, an empty list, or -1 for the counts. */
struct node {
    char *path;         /* owned JSON Pointer of this subschema inside its document */
    size_t doc;         /* index of its document in struct jsonschema.docs */
    const json_t *json; /* the schema value itself, borrowed from its document */
    unsigned dialect;   /* one D* bit */
    int boolean;        /* 1 or 0 for the schemas true and false, -1 for an object schema */
    /* The schema resource this node belongs to: the nearest enclosing node with an $id, or
     * its document's root. A resource's root has RES pointing at itself and owns URI, the
     * absolute (or, without any base, relative) URI without fragment; every other node
     * borrows nothing of it and reads RES->uri. */
    struct node *res;
    char *uri;
    struct dynanchor *dynanchors; /* owned; on resource roots only */
    size_t ndynanchors;
    bool recursive_anchor;      /* 2019-09 "$recursiveAnchor": true */
    const char *dynamic_anchor; /* this node's own $dynamicAnchor name, NULL if none */
    unsigned types;             /* JSVALUE_* bits */
    const json_t *enum_values, *const_value;
    const json_t *minimum, *maximum, *exclusive_minimum, *exclusive_maximum, *multiple_of;
    bool exclusive_min_flag, exclusive_max_flag; /* draft 4 boolean forms, folded after */
    json_int_t min_length, max_length, min_items, max_items, min_contains, max_contains;
    json_int_t min_properties, max_properties;
    bool unique_items;
    pcre2_code *pattern; /* owned */
    const char *pattern_source;
    enum jsformat format;
    bool format_assertion;  /* format asserts: the caller's option or the meta-schema says so */
    const json_t *required; /* array of distinct strings */
    const json_t *dependent_required; /* object of arrays of distinct strings */
    json_t *owned_dependent_required; /* draft 7 and earlier "dependencies": owned split */
    struct namedlist properties, dependent_schemas, defs;
    struct patprop *pattern_properties; /* owned array */
    size_t npattern_properties;
    struct node *additional_properties, *property_names, *items, *contains;
    /* Draft 2019-09 and earlier: "items" as an array is stored in PREFIX_ITEMS and
     * "additionalItems" (which applies only then) in ITEMS; LEGACY_ITEMS says so, for the
     * keyword names in messages. */
    bool legacy_items;
    struct node *additional_items; /* compiled as written; copied to ITEMS when it applies */
    struct node *unevaluated_properties, *unevaluated_items, *content_schema;
    struct nodelist prefix_items, all_of, any_of, one_of;
    struct node *not_schema, *if_schema, *then_schema, *else_schema;
    const char *ref; /* $ref as written */
    struct node *ref_target;
    const char *dynamic_ref;     /* $dynamicRef as written */
    struct node *dynamic_target; /* its static resolution */
    /* The anchor name a $dynamicRef looks up in the dynamic scope; NULL when its static
     * target has no $dynamicAnchor of that name (then it acts as a $ref). */
    const char *dynamic_name;
    bool recursive_ref;            /* 2019-09 "$recursiveRef": "#" */
    struct node *recursive_target; /* its static resolution: this resource's root */
    /* A reference points here, so validation may evaluate this node on one instance more
     * than once (nothing else can: without references each subschema applies to each
     * instance at most once); the validator remembers such results. */
    bool ref_target_of;
    int mark; /* cycle check: 0 unvisited, 1 on the search stack, 2 done; compile time only */
};

/* A URI registered while compiling: a schema resource (ANCHOR NULL) or a plain or dynamic
 * anchor inside one. */
struct uri_entry {
    char *uri;    /* owned, without fragment */
    char *anchor; /* owned, or NULL */
    struct node *node;
};

struct jsonschema {
    json_t **docs; /* owned: the private deep copy of the schema, then fetched documents */
    size_t ndocs;
    struct node *root;
    struct node **nodes; /* every node, owned, in compile order */
    size_t nnodes, cap;
    struct uri_entry *uris; /* owned; compile time only, freed by jsonschema_compile_ex() */
    size_t nuris, capuris;
    /* Every node by (document, path): open addressing, at most half full; compile time
     * only, for the JSON Pointers of references. */
    struct node **by_path;
    size_t by_path_cap;
    /* Some reference depends on the dynamic scope ($dynamicRef to a $dynamicAnchor,
     * $recursiveRef to a $recursiveAnchor): results then depend on the path taken, so the
     * validator does not remember them. */
    bool dynamic;
};

#endif
