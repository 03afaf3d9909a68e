/*
 * fuzz_canonjson: canonical JSON (src/jsonschema/canonjson.c) on arbitrary text.
 *
 * Properties: canonjson_parse() never reads outside its input; whatever it accepts,
 * canonjson_dump() writes as text that canonjson_parse() accepts again, that equals the first
 * value (json_equal()), and that dumps to exactly the same bytes (idempotence). The dump has
 * no NUL inside and its length is the one returned.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonschema/canonjson.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char errmsg[256] = "";
    char *in = malloc(size ? size : 1);
    CHECK(in != NULL);
    memcpy(in, data, size);
    json_t *v = NULL, *w = NULL;
    char *d1 = NULL, *d2 = NULL;
    size_t l1 = 0, l2 = 0;
    if (canonjson_parse(in, size, &v, errmsg, sizeof errmsg) != 0) {
        CHECK(v == NULL && errmsg[0] != '\0');
        goto done;
    }
    CHECK(canonjson_dump(v, &d1, &l1, errmsg, sizeof errmsg) == 0);
    CHECK(strlen(d1) == l1);
    CHECK(canonjson_parse(d1, l1, &w, errmsg, sizeof errmsg) == 0);
    CHECK(json_equal(v, w));
    CHECK(canonjson_dump(w, &d2, &l2, errmsg, sizeof errmsg) == 0);
    CHECK(l1 == l2 && memcmp(d1, d2, l1) == 0);
done:
    free(d1);
    free(d2);
    json_decref(v);
    json_decref(w);
    free(in);
    return 0;
}
