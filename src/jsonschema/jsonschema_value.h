/* The JSON Schema data model over jansson values: types, exact number comparison, equality
 * and hashing. Jansson keeps 1 and 1.0 apart (an integer and a real) and json_equal() says
 * they differ; JSON Schema says 1.0 is an integer equal to 1. Every function here reads its
 * arguments only and allocates nothing unless it says so. Private to the jsonschema*.c
 * files. */
#ifndef CONCLAVE_JSONSCHEMA_VALUE_H
#define CONCLAVE_JSONSCHEMA_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "jsonschema/jsonschema_buf.h"

/* The seven JSON Schema types as bits of a set. */
enum {
    JSVALUE_NULL = 1 << 0,
    JSVALUE_BOOLEAN = 1 << 1,
    JSVALUE_OBJECT = 1 << 2,
    JSVALUE_ARRAY = 1 << 3,
    JSVALUE_NUMBER = 1 << 4,
    JSVALUE_STRING = 1 << 5,
    JSVALUE_INTEGER = 1 << 6,
};

/* The bit of the type called NAME (borrowed), or 0 when NAME is not a JSON Schema type. */
unsigned jsonschema_value_type_bit(const char *name);
/* Every type V belongs to: 1 is an integer and a number, 1.0 too, 1.5 only a number. */
unsigned jsonschema_value_types_of(const json_t *v);
/* Appends the names of the types in TYPES, joined by " or ". */
void jsonschema_value_put_types(struct jsbuf *b, unsigned types);
/* The name of V's type for messages (a static string). A jansson real is "number" even
 * when it has no fractional part: that is what the user wrote. */
const char *jsonschema_value_type_name(const json_t *v);

/* Sets *OUT and returns true when X is a number without a fractional part that fits in a
 * json_int_t. */
bool jsonschema_value_as_int(const json_t *x, json_int_t *out);
/* X (a number) as a double, rounded for integers beyond 2^53. */
double jsonschema_value_number(const json_t *x);
/* Compares the numbers A and B exactly (-1, 0, 1), also an integer against a real where a
 * conversion to double would round. */
int jsonschema_value_cmp(const json_t *a, const json_t *b);
/* JSON Schema equality: numbers by value, arrays item by item, objects regardless of key
 * order. Recursive: both values must be within JSONSCHEMA_MAX_DEPTH. */
bool jsonschema_value_equal(const json_t *a, const json_t *b);
/* A hash consistent with jsonschema_value_equal(): equal values hash alike. Recursive like it. */
uint64_t jsonschema_value_hash(const json_t *v);
/* Writes the number X into BUF (32 bytes suffice): an integer exactly, a real in the
 * shortest form that reads back as the same double. */
void jsonschema_value_number_text(const json_t *x, char *buf, size_t len);

/* True when V has arrays and objects nested more than MAX_DEPTH deep (the validator passes
 * JSONSCHEMA_MAX_DEPTH), counting
 * LEVEL of them around V, which sits at AT; WHERE then receives the JSON Pointer of the first
 * one past the limit. The walk never goes below the limit, so it is safe on any input. */
bool jsonschema_value_too_deep(const json_t *v, int level, int max_depth, const struct jspath *at,
                               struct jsbuf *where);

#endif
