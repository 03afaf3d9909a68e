/* The compiled form of a JSON Schema, built by jsonschema.c and walked by
 * jsonschema_validate.c. Private to the jsonschema*.c files.
 *
 * Invariants every walk relies on:
 * - A compiled schema owns a deep copy of the schema JSON; every json_t and string pointer
 *   in a node borrows from that copy, which nothing modifies after compilation, so several
 *   threads may read a compiled schema at once.
 * - The schema nests at most JSONSCHEMA_MAX_DEPTH arrays and objects, so the node tree
 *   (without $ref edges) is shallower than that.
 * - Every $ref points at a node of the same compiled schema, and no cycle of $ref and
 *   in-place applicators (allOf, anyOf, oneOf, not, if/then/else, dependentSchemas) exists,
 *   so validation that follows a $ref back to an ancestor has moved deeper into the
 *   document since. */
#ifndef CONCLAVE_JSONSCHEMA_INTERNAL_H
#define CONCLAVE_JSONSCHEMA_INTERNAL_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <pcre2.h>

#include "jsonschema/jsonschema.h"
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

/* One subschema. An absent keyword is NULL, 0, an empty list, or -1 for the counts. */
struct node {
    char *path;     /* owned JSON Pointer of this subschema inside the schema */
    int boolean;    /* 1 or 0 for the schemas true and false, -1 for an object schema */
    unsigned types; /* JSVALUE_* bits */
    const json_t *enum_values, *const_value;
    const json_t *minimum, *maximum, *exclusive_minimum, *exclusive_maximum, *multiple_of;
    json_int_t min_length, max_length, min_items, max_items, min_contains, max_contains;
    json_int_t min_properties, max_properties;
    bool unique_items;
    pcre2_code *pattern; /* owned */
    const char *pattern_source;
    enum jsformat format;
    const json_t *required;           /* array of distinct strings */
    const json_t *dependent_required; /* object of arrays of distinct strings */
    struct namedlist properties, dependent_schemas, defs;
    struct patprop *pattern_properties; /* owned array */
    size_t npattern_properties;
    struct node *additional_properties, *property_names, *items, *contains;
    struct nodelist prefix_items, all_of, any_of, one_of;
    struct node *not_schema, *if_schema, *then_schema, *else_schema;
    const char *ref;
    struct node *ref_target;
    int mark; /* cycle check: 0 unvisited, 1 on the search stack, 2 done; compile time only */
};

struct jsonschema {
    json_t *doc; /* the private deep copy every borrowed pointer points into */
    struct node *root;
    struct node **nodes; /* every node, owned, in compile order */
    size_t nnodes, cap;
};

/* Searches L for the name of LEN bytes at NAME; NULL when it is not there. */
const struct named *jsonschema_find_named(const struct namedlist *l, const char *name, size_t len);

#endif
