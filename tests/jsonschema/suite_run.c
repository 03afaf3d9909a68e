/*
 * jsonschema_suite: runs the official JSON-Schema-Test-Suite (required tests) against the
 * validator and prints, per draft, the passing tests of each file and the totals.
 *
 * Usage: jsonschema_suite [-v] [-o] SUITE_DIR [FILTER]
 *   SUITE_DIR holds tests/DRAFT/NAME.json and remotes/ (see its README-conclave.md).
 *   -v lists every failing test (draft, file, group, test, and the compile error if any).
 *   -o also runs tests/DRAFT/optional/ and optional/format/ when the suite has them (the
 *      shared subset does not); the format files with format assertion on.
 *   FILTER runs only the files whose "draft/name.json" contains it.
 *
 * References to http://localhost:1234/... are served from SUITE_DIR/remotes through the
 * resolver hook of jsonschema_compile_ex(); the json-schema.org meta-schemas come from
 * suite_metaschemas.h. Not a ctest: the project's tests must not depend on the suite.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "jsonschema/jsonschema.h"
#include "jsonschema/suite_metaschemas.h"

#define REMOTE_PREFIX "http://localhost:1234/"
#define MAX_FILES     256

static const struct {
    const char *dir;
    enum jsonschema_dialect dialect;
} drafts[] = {
    {"draft2020-12", JSONSCHEMA_DRAFT2020_12},
    {"draft2019-09", JSONSCHEMA_DRAFT2019_09},
    {"draft7", JSONSCHEMA_DRAFT7},
    {"draft4", JSONSCHEMA_DRAFT4},
};

struct runner {
    const char *suite;
    bool verbose;
    bool optional;
};

/* The resolver hook: remotes/ for localhost:1234, the embedded meta-schemas otherwise. */
static json_t *resolve(const char *uri, void *data)
{
    const struct runner *r = data;
    size_t len = strcspn(uri, "#");
    if (strncmp(uri, REMOTE_PREFIX, strlen(REMOTE_PREFIX)) == 0) {
        char path[4096];
        int n = snprintf(path, sizeof path, "%s/remotes/%.*s", r->suite,
                         (int)(len - strlen(REMOTE_PREFIX)), uri + strlen(REMOTE_PREFIX));
        if (n < 0 || (size_t)n >= sizeof path)
            return NULL;
        return json_load_file(path, JSON_DECODE_ANY, NULL);
    }
    for (size_t i = 0; i < sizeof suite_metaschemas / sizeof *suite_metaschemas; i++) {
        const char *m = suite_metaschemas[i].uri;
        /* http and https name the same meta-schema. */
        const char *a = strchr(m, ':'), *b = strchr(uri, ':');
        if (a && b && (size_t)(uri + len - b) == strlen(a) && strncmp(a, b, strlen(a)) == 0)
            return json_loads(suite_metaschemas[i].json, 0, NULL);
    }
    return NULL;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct count {
    long pass, total;
};

/* Runs one test file; adds its counts to *C and prints them. */
static void run_file(const struct runner *r, const char *draft, enum jsonschema_dialect dialect,
                     const char *name, bool formats, struct count *c)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/%s/%s", r->suite, draft, name);
    json_error_t jerr;
    json_t *groups = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!json_is_array(groups)) {
        printf("  %-36s cannot read: %s\n", name, jerr.text);
        json_decref(groups);
        return;
    }
    struct count f = {0, 0};
    struct jsonschema_options opts = {.resolver = resolve,
                                      .resolver_data = (void *)r,
                                      .default_dialect = dialect,
                                      .format_assertion = formats};
    size_t gi;
    json_t *group;
    json_array_foreach(groups, gi, group)
    {
        json_t *tests = json_object_get(group, "tests");
        struct jsonschema *s = NULL;
        char err[512] = "";
        int rc =
            jsonschema_compile_ex(json_object_get(group, "schema"), &opts, &s, err, sizeof err);
        size_t ti;
        json_t *t;
        json_array_foreach(tests, ti, t)
        {
            f.total++;
            bool want = json_is_true(json_object_get(t, "valid"));
            int got = rc == 0 ? jsonschema_validate(s, json_object_get(t, "data"), NULL) : rc;
            bool ok = rc == 0 && (got == 0) == want && (got == 0 || got == JSONSCHEMA_INVALID);
            if (ok)
                f.pass++;
            else if (r->verbose)
                printf("    FAIL %s/%s: %s / %s: %s\n", draft, name,
                       json_string_value(json_object_get(group, "description")),
                       json_string_value(json_object_get(t, "description")),
                       rc != 0 ? err
                       : want  ? "should be valid"
                               : "should be invalid");
        }
        jsonschema_free(s);
    }
    json_decref(groups);
    printf("  %-36s %4ld/%-4ld\n", name, f.pass, f.total);
    c->pass += f.pass;
    c->total += f.total;
}

/* Runs the files of tests/DRAFT/SUB ("" or "optional/..."), adding to *C. */
static void run_dir(const struct runner *r, size_t d, const char *sub, const char *filter,
                    struct count *c)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/%s%s%s", r->suite, drafts[d].dir, *sub ? "/" : "", sub);
    DIR *dh = opendir(dir);
    if (!dh) {
        if (!*sub)
            fprintf(stderr, "cannot open %s\n", dir);
        return;
    }
    char *names[MAX_FILES];
    size_t n = 0;
    for (struct dirent *e = readdir(dh); e && n < MAX_FILES; e = readdir(dh)) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
            char name[512];
            snprintf(name, sizeof name, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
            names[n++] = strdup(name);
        }
    }
    closedir(dh);
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        char key[1024];
        snprintf(key, sizeof key, "%s/%s", drafts[d].dir, names[i]);
        if (!filter || strstr(key, filter))
            run_file(r, drafts[d].dir, drafts[d].dialect, names[i],
                     strcmp(sub, "optional/format") == 0, c);
        free(names[i]);
    }
}

int main(int argc, char **argv)
{
    struct runner r = {0};
    int argi = 1;
    for (; argi < argc && argv[argi][0] == '-'; argi++) {
        if (strcmp(argv[argi], "-v") == 0)
            r.verbose = true;
        else if (strcmp(argv[argi], "-o") == 0)
            r.optional = true;
        else
            break;
    }
    if (argi >= argc) {
        fprintf(stderr, "usage: jsonschema_suite [-v] [-o] SUITE_DIR [FILTER]\n");
        return 2;
    }
    r.suite = argv[argi++];
    const char *filter = argi < argc ? argv[argi] : NULL;
    struct count all = {0, 0};
    clock_t start = clock();
    for (size_t d = 0; d < sizeof drafts / sizeof *drafts; d++) {
        struct count c = {0, 0};
        printf("%s\n", drafts[d].dir);
        run_dir(&r, d, "", filter, &c);
        if (r.optional) {
            run_dir(&r, d, "optional", filter, &c);
            run_dir(&r, d, "optional/format", filter, &c);
        }
        printf("  %-36s %4ld/%-4ld (%.1f%%)\n", "TOTAL", c.pass, c.total,
               c.total ? 100.0 * (double)c.pass / (double)c.total : 0.0);
        all.pass += c.pass;
        all.total += c.total;
    }
    printf("ALL %ld/%ld (%.1f%%) in %.2f s\n", all.pass, all.total,
           all.total ? 100.0 * (double)all.pass / (double)all.total : 0.0,
           (double)(clock() - start) / CLOCKS_PER_SEC);
    return 0;
}
