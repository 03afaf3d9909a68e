/*
 * The node's config file: defaults, strict refusal of unknown fields and bad values naming
 * the field, relative paths, the environment overriding the file, and the secret file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/config.h"
#include "server/config_env.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/conclave-config.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/node.json", dir);
    unsetenv("DATABASE_URL");
    unsetenv("DB_MAX_CONNECTIONS");
    unsetenv("CONCLAVE_SECRET_FILE");
    for (const struct config_env_var *v = config_env_vars; v->name != NULL; v++) {
        unsetenv(v->name);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static void write_file(const char *p, const char *text, mode_t mode)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
}

/* Loads TEXT as the config; returns config_load's result and the message in ERR. */
static int load(const char *text, struct config *c, char *err, size_t errlen)
{
    write_file(path, text, 0644);
    err[0] = '\0';
    return config_load(path, c, err, errlen);
}

static void test_defaults_and_relative_paths(void **state)
{
    (void)state;
    struct config c;
    char err[512], expect[256];
    assert_int_equal(load("{\"auth\": {\"secret_file\": \"s/secret\"}}", &c, err, sizeof(err)), 0);
    assert_int_equal(c.node_id, 1);
    assert_string_equal(c.http_host, "127.0.0.1");
    assert_int_equal(c.http_port, 8080);
    assert_int_equal(c.http_max_body_bytes, 1024 * 1024);
    assert_int_equal(c.db.max_connections, 20);
    assert_true(c.access_log);
    char *real = realpath(dir, NULL);
    snprintf(expect, sizeof(expect), "%s/s/secret", real);
    assert_string_equal(c.secret_file, expect);
    snprintf(expect, sizeof(expect), "%s/data", real);
    assert_string_equal(c.data_dir, expect);
    free(real);
    config_free(&c);
}

static void test_full_file(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    assert_int_equal(load("{\"node_id\": 3, \"data_dir\": \"/var/lib/c\", "
                          "\"http\": {\"listen\": \"[::1]:9000\", \"max_body_bytes\": 2048}, "
                          "\"database\": {\"url\": \"postgresql://x@h/db\", "
                          "\"max_connections\": 4, \"min_connections\": 2}, "
                          "\"auth\": {\"secret_file\": \"/etc/s\", \"session_ttl_s\": 600}, "
                          "\"log\": {\"access\": false}}",
                          &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.node_id, 3);
    assert_string_equal(c.data_dir, "/var/lib/c");
    assert_string_equal(c.http_host, "::1");
    assert_int_equal(c.http_port, 9000);
    assert_int_equal(c.http_max_body_bytes, 2048);
    assert_string_equal(c.db.url, "postgresql://x@h/db");
    assert_int_equal(c.db.max_connections, 4);
    assert_int_equal(c.session_ttl_s, 600);
    assert_false(c.access_log);
    config_free(&c);
}

static void test_refusals_name_the_field(void **state)
{
    (void)state;
    struct config c;
    char err[1024];
    assert_int_equal(load("{\"http\": {\"listn\": \"127.0.0.1:1\"}}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "http.listn is not a known field"));
    assert_non_null(strstr(err, "http.listen"));
    assert_int_equal(load("{\"nodeid\": 1}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nodeid is not a known field"));
    assert_int_equal(load("{\"http\": {\"listen\": \"127.0.0.1\"}}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "http.listen must be HOST:PORT"));
    assert_int_equal(load("{\"http\": {\"listen\": \"127.0.0.1:70000\"}}", &c, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "port that is not a number from 1 to 65535"));
    assert_int_equal(load("{\"database\": {\"max_connections\": \"8\"}}", &c, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "database.max_connections must be a whole number from 1 to 1000"));
    assert_int_equal(load("{\"database\": {\"max_connections\": 2, \"min_connections\": 3}}", &c,
                          err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "min connections (3) is larger than max connections (2)"));
    assert_int_equal(load("{\"log\": {\"access\": 1}}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "log.access must be true or false"));
    assert_int_equal(load("[1]", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "must be a JSON object"));
    assert_int_equal(load("{\"node_id\": 1, \"node_id\": 2}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "duplicate"));
    assert_int_equal(load("{", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 1"));
    assert_int_equal(config_load("/nonexistent/node.json", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open config file /nonexistent/node.json"));
}

/* HTTPS on the API port: http.cert_file and http.key_file together (resolved against the
 * config's directory), never one alone, and not with a raft section in plaintext mode,
 * whose missing raft.ca_file forwarding to the leader would need. */
static void test_https_files(void **state)
{
    (void)state;
    struct config c;
    char err[1024], expect[256];
    assert_int_equal(load("{\"auth\": {\"secret_file\": \"/s\"}}", &c, err, sizeof(err)), 0);
    assert_null(c.http_cert_file);
    assert_null(c.http_key_file);
    assert_false(c.http_insecure_plaintext);
    config_free(&c);

    /* Plain http is a named choice (serve refuses a node with neither), never beside a
     * certificate, and only a boolean. */
    assert_int_equal(load("{\"http\": {\"insecure_plaintext\": true}}", &c, err, sizeof(err)), 0);
    assert_true(c.http_insecure_plaintext);
    assert_null(c.http_cert_file);
    config_free(&c);
    assert_int_equal(load("{\"http\": {\"insecure_plaintext\": false}}", &c, err, sizeof(err)), 0);
    assert_false(c.http_insecure_plaintext);
    config_free(&c);
    assert_int_equal(load("{\"http\": {\"insecure_plaintext\": 1}}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "http.insecure_plaintext must be true or false"));
    assert_int_equal(load("{\"http\": {\"insecure_plaintext\": true, \"cert_file\": \"/c.pem\", "
                          "\"key_file\": \"/k.pem\"}}",
                          &c, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "http.insecure_plaintext is true, but http.cert_file and "
                                "http.key_file turn https on: choose one"));

    assert_int_equal(
        load("{\"http\": {\"cert_file\": \"tls/n1.pem\", \"key_file\": \"/k/n1.key\"}}", &c, err,
             sizeof(err)),
        0);
    char *real = realpath(dir, NULL);
    snprintf(expect, sizeof(expect), "%s/tls/n1.pem", real);
    free(real);
    assert_string_equal(c.http_cert_file, expect);
    assert_string_equal(c.http_key_file, "/k/n1.key");
    config_free(&c);

    assert_int_equal(load("{\"http\": {\"cert_file\": \"/c.pem\"}}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "http.key_file is required when http.cert_file is set"));
    assert_int_equal(load("{\"http\": {\"key_file\": \"/k.pem\"}}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "http.cert_file is required when http.key_file is set"));
    assert_int_equal(
        load("{\"http\": {\"cert_file\": \"\", \"key_file\": \"/k.pem\"}}", &c, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "http.cert_file must be a non-empty string"));
    assert_int_equal(
        load("{\"http\": {\"cert_file\": 1, \"key_file\": \"/k.pem\"}}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "http.cert_file must be a non-empty string"));
    assert_int_equal(
        load("{\"http\": {\"cert_file\": \"/c.pem\", \"key_file\": \"/k.pem\"}, "
             "\"raft\": {\"address\": \"127.0.0.1:9001\", \"insecure_plaintext\": true}}",
             &c, err, sizeof(err)),
        -1);
    assert_non_null(strstr(err, "http.cert_file is set, but raft.insecure_plaintext leaves "
                                "raft.ca_file unset"));
    assert_int_equal(load("{\"http\": {\"cert_file\": \"/c.pem\", \"key_file\": \"/k.pem\"}, "
                          "\"raft\": {\"address\": \"127.0.0.1:9001\", \"ca_file\": \"/ca.pem\", "
                          "\"cert_file\": \"/c.pem\", \"key_file\": \"/k.pem\"}}",
                          &c, err, sizeof(err)),
                     0);
    assert_string_equal(c.http_cert_file, "/c.pem");
    assert_string_equal(c.raft.tls_ca_file, "/ca.pem");
    config_free(&c);
}

static void test_environment_overrides(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    setenv("DATABASE_URL", "postgresql://env@127.0.0.1/env", 1);
    setenv("DB_MAX_CONNECTIONS", "3", 1);
    setenv("CONCLAVE_SECRET_FILE", "/run/secret", 1);
    assert_int_equal(load("{\"database\": {\"url\": \"postgresql://file/db\", \"max_connections\": "
                          "9, \"min_connections\": 1}, \"auth\": {\"secret_file\": \"x\"}}",
                          &c, err, sizeof(err)),
                     0);
    assert_string_equal(c.db.url, "postgresql://env@127.0.0.1/env");
    assert_int_equal(c.db.max_connections, 3);
    assert_string_equal(c.secret_file, "/run/secret");
    config_free(&c);
    setenv("DB_MAX_CONNECTIONS", "many", 1);
    assert_int_equal(load("{}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "environment: DB_MAX_CONNECTIONS=\"many\""));
}

/* The node's own settings from CONCLAVE_* variables: they beat the file, create a section the
 * file lacks, pass the file's checks, and a refusal names the variable. */
static void test_environment_node_settings(void **state)
{
    (void)state;
    struct config c;
    char err[512], cwd[256], want[400];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    setenv("CONCLAVE_NODE_ID", "3", 1);
    setenv("CONCLAVE_HTTP_LISTEN", "127.0.0.1:9999", 1);
    setenv("CONCLAVE_DATA_DIR", "rel/data", 1);
    setenv("CONCLAVE_RAFT_ADDRESS", "127.0.0.1:9003", 1);
    setenv("CONCLAVE_RAFT_PEERS",
           "[{\"id\": 1, \"address\": \"127.0.0.1:9001\"}, {\"id\": 3, \"address\": "
           "\"127.0.0.1:9003\", \"http\": \"127.0.0.1:9999\"}]",
           1);
    setenv("CONCLAVE_RAFT_INSECURE_PLAINTEXT", "true", 1);
    setenv("CONCLAVE_LOG_ACCESS", "", 1); /* empty: unset, the file's value stays */
    assert_int_equal(load("{\"node_id\": 1, \"http\": {\"listen\": \"127.0.0.1:8080\"}, "
                          "\"log\": {\"access\": false}}",
                          &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.node_id, 3);
    assert_int_equal(c.raft.id, 3);
    assert_int_equal(c.http_port, 9999);
    snprintf(want, sizeof(want), "%s/rel/data", cwd);
    assert_string_equal(c.data_dir, want);
    assert_true(c.has_raft);
    assert_string_equal(c.raft.address, "127.0.0.1:9003");
    assert_int_equal(c.raft.nbootstrap, 2);
    assert_string_equal(c.raft.bootstrap[1].http, "127.0.0.1:9999");
    assert_false(c.access_log);
    config_free(&c);

    /* Values the file's checks refuse, named by the variable. */
    setenv("CONCLAVE_NODE_ID", "70000", 1);
    assert_int_equal(load("{}", &c, err, sizeof(err)), -1);
    assert_string_equal(err, "environment variable CONCLAVE_NODE_ID: node_id must be a whole "
                             "number from 1 to 65535");
    setenv("CONCLAVE_NODE_ID", "three", 1);
    assert_int_equal(load("{}", &c, err, sizeof(err)), -1);
    assert_string_equal(err, "environment variable CONCLAVE_NODE_ID (node_id) must be a whole "
                             "number, got \"three\"");
    setenv("CONCLAVE_NODE_ID", "2", 1);
    setenv("CONCLAVE_HTTP_LISTEN", "nowhere", 1);
    assert_int_equal(load("{}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "environment variable CONCLAVE_HTTP_LISTEN: http.listen"));
    unsetenv("CONCLAVE_HTTP_LISTEN");
    setenv("CONCLAVE_RAFT_PEERS", "[{\"id\": 1,", 1);
    assert_int_equal(load("{}", &c, err, sizeof(err)), -1);
    assert_non_null(
        strstr(err, "environment variable CONCLAVE_RAFT_PEERS (raft.peers) is not valid JSON"));
    setenv("CONCLAVE_RAFT_PEERS", "[{\"id\": 0, \"address\": \"127.0.0.1:9001\"}]", 1);
    assert_int_equal(load("{}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "environment variable CONCLAVE_RAFT_PEERS: raft.peers"));
    setenv("CONCLAVE_RAFT_PEERS", "[]", 1);
    setenv("CONCLAVE_RAFT_INSECURE_PLAINTEXT", "yes", 1);
    assert_int_equal(load("{}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "CONCLAVE_RAFT_INSECURE_PLAINTEXT (raft.insecure_plaintext) must "
                                "be true or false"));
    /* A file whose section is not an object is the file's fault, named as such. */
    unsetenv("CONCLAVE_RAFT_PEERS");
    unsetenv("CONCLAVE_RAFT_INSECURE_PLAINTEXT");
    assert_int_equal(load("{\"raft\": 5}", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "but the file's raft is not an object"));
}

static void test_secret_file(void **state)
{
    (void)state;
    struct config c;
    char err[512], secret_path[160];
    unsigned char secret[128];
    size_t len = 0;
    snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
    assert_int_equal(load("{\"auth\": {\"secret_file\": \"secret\"}}", &c, err, sizeof(err)), 0);

    assert_int_equal(config_read_secret(&c, secret, sizeof(secret), &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot read secret file"));

    write_file(secret_path, "  00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
               0600);
    assert_int_equal(config_read_secret(&c, secret, sizeof(secret), &len, err, sizeof(err)), 0);
    assert_int_equal(len, 32);
    assert_int_equal(secret[1], 0x11);

    chmod(secret_path, 0644);
    assert_int_equal(config_read_secret(&c, secret, sizeof(secret), &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "readable by group or others (mode 644)"));

    write_file(secret_path, "abcd\n", 0600);
    assert_int_equal(config_read_secret(&c, secret, sizeof(secret), &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at least 64 hex characters"));
    config_free(&c);

    assert_int_equal(load("{}", &c, err, sizeof(err)), 0);
    assert_int_equal(config_read_secret(&c, secret, sizeof(secret), &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "auth.secret_file is not set"));
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_and_relative_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_name_the_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_https_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_node_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
