#include "server/config_env.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct config_env_var config_env_vars[] = {
    {"CONCLAVE_NODE_ID", "node_id", CONFIG_ENV_INT},
    {"CONCLAVE_DATA_DIR", "data_dir", CONFIG_ENV_PATH},
    {"CONCLAVE_HTTP_LISTEN", "http.listen", CONFIG_ENV_STRING},
    {"CONCLAVE_HTTP_CERT_FILE", "http.cert_file", CONFIG_ENV_PATH},
    {"CONCLAVE_HTTP_KEY_FILE", "http.key_file", CONFIG_ENV_PATH},
    {"CONCLAVE_HTTP_INSECURE_PLAINTEXT", "http.insecure_plaintext", CONFIG_ENV_BOOL},
    {"CONCLAVE_RAFT_ADDRESS", "raft.address", CONFIG_ENV_STRING},
    {"CONCLAVE_RAFT_PEERS", "raft.peers", CONFIG_ENV_JSON},
    {"CONCLAVE_RAFT_CA_FILE", "raft.ca_file", CONFIG_ENV_PATH},
    {"CONCLAVE_RAFT_CERT_FILE", "raft.cert_file", CONFIG_ENV_PATH},
    {"CONCLAVE_RAFT_KEY_FILE", "raft.key_file", CONFIG_ENV_PATH},
    {"CONCLAVE_RAFT_INSECURE_PLAINTEXT", "raft.insecure_plaintext", CONFIG_ENV_BOOL},
    {"CONCLAVE_LOG_ACCESS", "log.access", CONFIG_ENV_BOOL},
    {"CONCLAVE_LOG_FORMAT", "log.format", CONFIG_ENV_STRING},
    {"CONCLAVE_LOG_LEVEL", "log.level", CONFIG_ENV_STRING},
    {NULL, NULL, CONFIG_ENV_STRING},
};

/* The JSON value of variable V's TEXT, or NULL after filling ERRMSG. */
static json_t *value_of(const struct config_env_var *v, const char *text, char *errmsg,
                        size_t errlen)
{
    switch (v->type) {
    case CONFIG_ENV_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0') {
            snprintf(errmsg, errlen,
                     "environment variable %s (%s) must be a whole number, got \"%s\"", v->name,
                     v->field, text);
            return NULL;
        }
        return json_integer(n);
    }
    case CONFIG_ENV_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0) {
            return json_true();
        }
        if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0) {
            return json_false();
        }
        snprintf(errmsg, errlen, "environment variable %s (%s) must be true or false, got \"%s\"",
                 v->name, v->field, text);
        return NULL;
    case CONFIG_ENV_PATH: {
        if (text[0] == '/') {
            return json_string(text);
        }
        char cwd[PATH_MAX], full[PATH_MAX + 256];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            snprintf(errmsg, errlen,
                     "environment variable %s (%s) is a relative path, and the working "
                     "directory is unknown: %s",
                     v->name, v->field, strerror(errno));
            return NULL;
        }
        snprintf(full, sizeof(full), "%s/%s", cwd, text);
        return json_string(full);
    }
    case CONFIG_ENV_JSON: {
        json_error_t jerr;
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
        if (j == NULL) {
            snprintf(errmsg, errlen, "environment variable %s (%s) is not valid JSON: %s", v->name,
                     v->field, jerr.text);
        }
        return j;
    }
    case CONFIG_ENV_STRING:
    default:
        return json_string(text);
    }
}

int config_env_apply(json_t *root, uint32_t *applied, char *errmsg, size_t errlen)
{
    *applied = 0;
    for (uint32_t i = 0; config_env_vars[i].name != NULL; i++) {
        const struct config_env_var *v = &config_env_vars[i];
        const char *text = getenv(v->name);
        if (text == NULL || text[0] == '\0') {
            continue; /* empty is unset, as for CONCLAVE_SECRET_FILE */
        }
        json_t *value = value_of(v, text, errmsg, errlen);
        if (value == NULL) {
            return -1;
        }
        /* "section.key" or "key": the file's sections are one level deep. */
        const char *dot = strchr(v->field, '.');
        json_t *obj = root;
        if (dot != NULL) {
            char section[32];
            snprintf(section, sizeof(section), "%.*s", (int)(dot - v->field), v->field);
            obj = json_object_get(root, section);
            if (obj == NULL) {
                obj = json_object();
                json_object_set_new(root, section, obj);
            }
            if (!json_is_object(obj)) {
                json_decref(value);
                snprintf(errmsg, errlen,
                         "environment variable %s sets %s, but the file's %s is not an object",
                         v->name, v->field, section);
                return -1;
            }
        }
        if (json_object_set_new(obj, dot ? dot + 1 : v->field, value) != 0) {
            snprintf(errmsg, errlen, "out of memory applying environment variable %s", v->name);
            return -1;
        }
        *applied |= 1u << i;
    }
    return 0;
}

const char *config_env_source(uint32_t applied, const char *field)
{
    for (uint32_t i = 0; config_env_vars[i].name != NULL; i++) {
        size_t n = strlen(config_env_vars[i].field);
        if ((applied & (1u << i)) != 0 && strncmp(field, config_env_vars[i].field, n) == 0 &&
            (field[n] == '\0' || field[n] == '.' || field[n] == '[')) {
            return config_env_vars[i].name;
        }
    }
    return NULL;
}
