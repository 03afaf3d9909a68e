/*
 * fuzz_jsonschema: the JSON Schema compiler and validator (src/jsonschema) on arbitrary input.
 *
 * The input is a schema and an instance separated by the first NUL byte (no NUL: the whole
 * input is the schema and the schema itself is the instance). Properties: compiling never
 * crashes, leaks or hangs (the compiler's depth and the validator's step limits bound the
 * work); a refused schema leaves a message; validation returns 0 or JSONSCHEMA_INVALID, with
 * an error array exactly when invalid, of at most JSONSCHEMA_MAX_ERRORS + 1 entries; and it
 * is deterministic (the same answer twice).
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
    int rc = jsonschema_compile(schema, &s, errmsg, sizeof errmsg);
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
