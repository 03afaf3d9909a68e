/* The compiled form of a JSON Schema, built by jsonschema.c and walked by
 * jsonschema_validate.c. Private to the jsonschema*.c files.
 *
 * Invariants every walk relies on:
 * - A compiled schema owns deep copies of the schema JSON and of every document the resolver
 *   returned; every json_t and string pointer in a node borrows from those copies, which
 *   nothing modifies after compilation, so several threads may read a compiled schema at
 *   once. Validation keeps all its state (errors, dynamic scope, remembered results) in its
 *   own call.
 * - Each document nests at most JSONSCHEMA_MAX_DEPTH arrays and objects, so the node tree
 *   (without reference edges) is shallower than that.
 * - Only a reference target (ref_target_of) can be evaluated twice on the same instance:
 *   without references, each subschema applies to each instance along one path only.
 * - Every $ref points at a node of the same compiled schema (whose documents are the schema
 *   and those the resolver returned), and no cycle of static references ($ref and the
 *   static targets of $dynamicRef / $recursiveRef) and in-place applicators (allOf, anyOf,
 *   oneOf, not, if/then/else, dependentSchemas) exists. Dynamic references may still
 *   cycle; JSONSCHEMA_MAX_EVAL_DEPTH and JSONSCHEMA_MAX_STEPS bound them at validation. */
#ifndef CONCLAVE_JSONSCHEMA_INTERNAL_H
#define CONCLAVE_JSONSCHEMA_INTERNAL_H

#include <stddef.h>

#include "jsonschema/jsonschema.h"
#include "jsonschema/jsonschema_node.h"

/* Searches L for the name of LEN bytes at NAME; NULL when it is not there. */
const struct named *jsonschema_find_named(const struct namedlist *l, const char *name, size_t len);

#endif
