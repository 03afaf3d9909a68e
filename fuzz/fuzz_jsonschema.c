/*
 * fuzz_jsonschema: the JSON Schema compiler and validator (src/jsonschema) on arbitrary input.
 *
 * The input is a schema and an instance separated by the first NUL byte (no NUL: the whole
 * input is the schema and the schema itself is the instance). Properties: compiling never
 * crashes, leaks or hangs (the compiler's depth and the validator's step limits bound the
 * work); a refused schema leaves a message; validation returns 0 or JSONSCHEMA_INVALID, with
 * an error array exactly when invalid, of at most JSONSCHEMA_MAX_ERRORS + 1 entries; it is
 * deterministic (the same answer twice) and the same without an error list. The options come
 * from the input's last byte, so the corpus reaches every mode: bit 0 format assertion (the
 * format checkers: dates, IDNA, URIs, ...), bit 1 strict, bit 2 a resolver that serves the
 * schema itself as "urn:fuzz:self" (references between documents).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonschema/jsonschema.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A catalog of one: "urn:fuzz:self" is the schema under test. */
static json_t *resolve_self(const char *uri, void *data)
{
    return strcmp(uri, "urn:fuzz:self") == 0 ? json_incref((json_t *)data) : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(data, '\0', size);
    size_t schema_len = nul ? (size_t)(nul - text) : size;
    json_t *schema = json_loadb(text, schema_len, JSON_REJECT_DUPLICATES, NULL);
    if (schema == NULL)
        return 0;
    json_t *doc = nul ? json_loadb(nul + 1, size - schema_len - 1,
                                   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL)
                      : json_incref(schema);
    struct jsonschema *s = NULL;
    char errmsg[512] = "";
    uint8_t mode = size > 0 ? data[size - 1] : 0;
    struct jsonschema_options opts = {.format_assertion = (mode & 1) != 0,
                                      .strict = (mode & 2) != 0,
                                      .resolver = (mode & 4) != 0 ? resolve_self : NULL,
                                      .resolver_data = schema};
    int rc = jsonschema_compile_ex(schema, &opts, &s, errmsg, sizeof errmsg);
    if (rc != 0) {
        CHECK(rc == JSONSCHEMA_EBADSCHEMA && s == NULL && errmsg[0] != '\0');
        goto done;
    }
    if (doc != NULL) {
        json_t *e1 = NULL, *e2 = NULL;
        int r1 = jsonschema_validate(s, doc, &e1);
        int r2 = jsonschema_validate(s, doc, &e2);
        CHECK(r1 == 0 || r1 == JSONSCHEMA_INVALID);
        CHECK(r1 == r2);
        CHECK(jsonschema_validate(s, doc, NULL) == r1);
        if (r1 == JSONSCHEMA_INVALID) {
            CHECK(json_is_array(e1) && json_array_size(e1) >= 1);
            CHECK(json_array_size(e1) <= JSONSCHEMA_MAX_ERRORS + 1);
            CHECK(json_equal(e1, e2));
        }
        json_decref(e1);
        json_decref(e2);
    }
done:
    jsonschema_free(s);
    json_decref(schema);
    json_decref(doc);
    return 0;
}
