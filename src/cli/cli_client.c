#include "cli/cli_client.h"
#include "cli/cli_out.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <curl/curl.h>

/* The endpoints are split once; PREFERRED is the one that answered last, tried first. */
struct cli_client {
    CURL *curl;
    char **urls;
    size_t n_urls;
    size_t preferred;
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    long timeout_s;
    char *cacert; /* CURLOPT_CAINFO, or NULL: libcurl's default CAs */
    char *cert;   /* CURLOPT_SSLCERT and CURLOPT_SSLKEY, or both NULL */
    char *key;
    bool answered;
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's detail of the last failed attempt */
    volatile sig_atomic_t *abort_flag;
};

/* The response body as it arrives. */
struct body_buf {
    char *data;
    size_t len;
    size_t cap;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct body_buf *b = arg;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            return 0; /* curl reports CURLE_WRITE_ERROR */
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static void free_urls(char **urls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(urls[i]);
    }
    free(urls);
}

/* Splits the comma-separated LIST into trimmed base URLs without a trailing slash. */
static int split_endpoints(const char *list, char ***out, size_t *n_out, char *err, size_t errlen)
{
    char **urls = NULL;
    size_t n = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '/')) {
            len--;
        }
        if (len > 0) {
            if (!((len > 7 && strncmp(p, "http://", 7) == 0) ||
                  (len > 8 && strncmp(p, "https://", 8) == 0))) {
                snprintf(err, errlen,
                         "endpoint \"%.*s\" is not an http:// or https:// URL; pass "
                         "--endpoints http://HOST:PORT[,...]",
                         (int)len, p);
                free_urls(urls, n);
                return CLI_EXIT_USAGE;
            }
            char **grown = realloc(urls, (n + 1) * sizeof(*urls));
            if (grown == NULL || (grown[n] = strndup(p, len)) == NULL) {
                free_urls(grown ? grown : urls, n);
                snprintf(err, errlen, "out of memory");
                return CLI_EXIT_FAILURE;
            }
            urls = grown;
            n++;
        }
        p += end ? (size_t)(end - p) + 1 : strlen(p);
    }
    if (n == 0) {
        snprintf(err, errlen, "no endpoints; pass --endpoints http://HOST:PORT[,...]");
        return CLI_EXIT_USAGE;
    }
    *out = urls;
    *n_out = n;
    return CLI_EXIT_OK;
}

/* What to check after the TLS failure CC, for the message ("" when CC is not one). */
static const char *tls_hint(const struct cli_client *c, CURLcode cc)
{
    if (cc == CURLE_SSL_CERTPROBLEM) {
        return " (check --client-cert and --client-key: a PEM certificate and its "
               "unencrypted key)";
    }
    if (cc != CURLE_PEER_FAILED_VERIFICATION && cc != CURLE_SSL_CONNECT_ERROR &&
        cc != CURLE_SSL_CACERT_BADFILE) {
        return "";
    }
    return c->cacert == NULL ? " (pass the cluster's ca with --cacert FILE or CONCLAVE_CACERT)"
                             : " (is --cacert the cluster's ca?)";
}

/* *OUT = a copy of PATH (NULL stays NULL) once the file can be opened for reading; WHAT and
 * GIVEN_BY name it in the message. Returns a CLI_EXIT_ class. */
static int copy_readable(const char *path, const char *what, const char *given_by, char **out,
                         char *err, size_t errlen)
{
    if (path == NULL) {
        return CLI_EXIT_OK;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the %s %s (%s): %s", what, path, given_by,
                 strerror(errno));
        return CLI_EXIT_USAGE;
    }
    fclose(f);
    if ((*out = strdup(path)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

int cli_client_open(const struct cli_global *g, struct cli_client **out, char *err, size_t errlen)
{
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            snprintf(err, errlen, "libcurl cannot be initialised");
            return CLI_EXIT_FAILURE;
        }
        curl_ready = true;
    }
    struct cli_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return CLI_EXIT_FAILURE;
    }
    int rc = split_endpoints(g->endpoints, &c->urls, &c->n_urls, err, errlen);
    if (rc != CLI_EXIT_OK) {
        goto fail;
    }
    const char *secret = g->api_key ? g->api_key : g->token;
    if (secret != NULL && secret[0] != '\0') {
        size_t len = strlen(secret) + 32;
        c->auth_header = malloc(len);
        if (c->auth_header == NULL) {
            rc = CLI_EXIT_FAILURE;
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        snprintf(c->auth_header, len, "Authorization: Bearer %s", secret);
    }
    c->timeout_s = g->timeout_s > 0 ? g->timeout_s : 30;
    /* The files are checked here so that a typo is one clear message, not a TLS error per
     * endpoint. */
    if ((rc = copy_readable(g->cacert, "ca file", "--cacert or CONCLAVE_CACERT", &c->cacert, err,
                            errlen)) != CLI_EXIT_OK ||
        (rc = copy_readable(g->cert, "client certificate", "--client-cert or CONCLAVE_CLIENT_CERT",
                            &c->cert, err, errlen)) != CLI_EXIT_OK ||
        (rc = copy_readable(g->key, "client key", "--client-key or CONCLAVE_CLIENT_KEY", &c->key,
                            err, errlen)) != CLI_EXIT_OK) {
        goto fail;
    }
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        rc = CLI_EXIT_FAILURE;
        snprintf(err, errlen, "libcurl cannot create a handle");
        goto fail;
    }
    *out = c;
    return CLI_EXIT_OK;
fail:
    cli_client_close(c);
    return rc;
}

void cli_client_close(struct cli_client *c)
{
    if (c == NULL) {
        return;
    }
    if (c->curl) {
        curl_easy_cleanup(c->curl);
    }
    free_urls(c->urls, c->n_urls);
    free(c->cacert);
    free(c->cert);
    free(c->key);
    if (c->auth_header) {
        explicit_bzero(c->auth_header, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c);
}

void cli_client_set_timeout(struct cli_client *c, long seconds)
{
    c->timeout_s = seconds;
}

void cli_client_set_abort(struct cli_client *c, volatile sig_atomic_t *flag)
{
    c->abort_flag = flag;
}

/* curl's progress callback: a non-zero answer aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const struct cli_client *c = arg;
    return c->abort_flag != NULL && *c->abort_flag != 0;
}

void cli_client_no_auth(struct cli_client *c)
{
    if (c->auth_header) {
        explicit_bzero(c->auth_header, strlen(c->auth_header));
        free(c->auth_header);
        c->auth_header = NULL;
    }
}

const char *cli_client_endpoint(const struct cli_client *c)
{
    return c->answered ? c->urls[c->preferred] : NULL;
}

/* One attempt at URL. Returns the curl code; on CURLE_OK fills *STATUS and BODY. */
static CURLcode perform(struct cli_client *c, const char *method, const char *url,
                        const char *payload, long *status, struct body_buf *body)
{
    CURL *h = c->curl;
    struct curl_slist *headers = NULL, *grown;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "conclave-cli/" CONCLAVE_VERSION);
    /* Proxies from the environment would route loopback clusters astray. */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    if (c->cacert != NULL) {
        /* The cluster's CA alone, not the system's bundle as well. */
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (c->cert != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (c->abort_flag != NULL) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    const char *fixed[] = {"Accept: application/json", "Content-Type: application/json",
                           "Expect:", c->auth_header};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (fixed[i] == NULL || (i == 1 && payload == NULL)) {
            continue;
        }
        grown = curl_slist_append(headers, fixed[i]);
        if (grown == NULL) {
            curl_slist_free_all(headers);
            return CURLE_OUT_OF_MEMORY;
        }
        headers = grown;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (payload != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    }
    curl_slist_free_all(headers);
    return rc;
}

int cli_client_call(struct cli_client *c, const char *method, const char *path, const json_t *body,
                    long *status, json_t **reply, char *err, size_t errlen)
{
    char *payload = NULL;
    char tried[1024] = "";
    size_t used = 0;
    struct body_buf last = {0};
    long last_status = 0;
    const char *last_url = NULL;
    int rc = CLI_EXIT_UNAVAILABLE;

    *reply = NULL;
    *status = 0;
    if (body != NULL && (payload = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL) {
        snprintf(err, errlen, "out of memory encoding the request");
        return CLI_EXIT_FAILURE;
    }
    /* Each endpoint once, from the preferred one on. START is fixed for the whole loop:
     * c->preferred moves to every node that answers, so counting from it would try the node
     * that answered first again and never the last one (with three endpoints: 0, 1, 0), and a
     * membership change whose leader is the last endpoint got the followers' 503 not_leader
     * (issue 15 item 4, tests/raft/raft_transfer_add.sh). */
    size_t start = c->preferred;
    for (size_t k = 0; k < c->n_urls; k++) {
        size_t i = (start + k) % c->n_urls;
        size_t ulen = strlen(c->urls[i]) + strlen(path) + 1;
        char *url = malloc(ulen);
        if (url == NULL) {
            rc = CLI_EXIT_FAILURE;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        snprintf(url, ulen, "%s%s", c->urls[i], path);
        struct body_buf b = {0};
        long st = 0;
        CURLcode cc = perform(c, method, url, payload, &st, &b);
        free(url);
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
            free(b.data);
            rc = CLI_EXIT_FAILURE;
            snprintf(err, errlen, "interrupted");
            goto out;
        }
        if (cc == CURLE_OUT_OF_MEMORY || cc == CURLE_WRITE_ERROR) {
            free(b.data);
            rc = CLI_EXIT_FAILURE;
            snprintf(err, errlen, "out of memory reading the answer of %s", c->urls[i]);
            goto out;
        }
        long sent = 0;
        if (cc != CURLE_OK && strcmp(method, "GET") != 0 &&
            curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent > 0) {
            /* The request left, so the node may have carried it out: sending it to another
             * node could do it twice. The caller decides (a config write retries with its
             * request id, which the cluster applies at most once); its next call starts at the
             * next node. */
            free(b.data);
            c->preferred = (i + 1) % c->n_urls;
            snprintf(err, errlen,
                     "%s took the request but sent no answer (%s): it may or may not have been "
                     "carried out; look before you retry",
                     c->urls[i], curl_easy_strerror(cc));
            rc = CLI_EXIT_UNAVAILABLE;
            goto out;
        }
        if (cc != CURLE_OK) {
            /* Never sent (or a read): the next node may do. */
            free(b.data);
            int w = snprintf(tried + used, sizeof(tried) - used, "%s%s: %s%s", used ? "; " : "",
                             c->urls[i], c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc),
                             tls_hint(c, cc));
            if (w > 0 && (size_t)w < sizeof(tried) - used) {
                used += (size_t)w;
            }
            continue;
        }
        free(last.data);
        last = b;
        last_status = st;
        last_url = c->urls[i];
        c->preferred = i;
        c->answered = true;
        if (st != 503) {
            break;
        }
        /* 503: this node cannot serve it now (no leader, database down, not the leader for a
         * membership change); another node may. The last 503 is the answer if none can. */
    }
    if (last_url == NULL) {
        snprintf(err, errlen,
                 "no node answered (%s); check that the cluster is running (scripts/cluster "
                 "status) and that --endpoints or CONCLAVE_ENDPOINTS names its nodes",
                 tried);
        rc = CLI_EXIT_UNAVAILABLE;
        goto out;
    }
    if (last.len > 0) {
        json_error_t jerr;
        *reply = json_loadb(last.data, last.len, JSON_DECODE_ANY, &jerr);
        if (*reply == NULL) {
            snprintf(err, errlen, "%s answered HTTP %ld with a body that is not JSON (%s): %.120s",
                     last_url, last_status, jerr.text, last.data);
            rc = last_status == 503 || last_status == 504 ? CLI_EXIT_UNAVAILABLE : CLI_EXIT_FAILURE;
            goto out;
        }
    }
    *status = last_status;
    rc = CLI_EXIT_OK;
out:
    free(last.data);
    if (payload) {
        explicit_bzero(payload, strlen(payload));
        free(payload);
    }
    return rc;
}

/* The message of an error reply: {"error": CODE, "message": TEXT} (docs/api.md), or the
 * nested form {"error": {"code", "message"}}. */
static const char *error_message(const json_t *reply, const char **code)
{
    const json_t *e = json_object_get(reply, "error");
    const json_t *holder = json_is_object(e) ? e : reply;
    *code =
        json_is_object(e) ? json_string_value(json_object_get(e, "code")) : json_string_value(e);
    return json_string_value(json_object_get(holder, "message"));
}

int cli_client_error(long status, const json_t *reply, const char *what, char *err, size_t errlen)
{
    const char *code = NULL;
    const char *msg = error_message(reply, &code);
    char fallback[64];
    if (msg == NULL) {
        snprintf(fallback, sizeof(fallback), "the node answered HTTP %ld", status);
        msg = fallback;
    }
    const char *hint = "";
    int rc;
    switch (status) {
    case 400:
    case 413:
    case 422:
        rc = CLI_EXIT_INVALID;
        break;
    case 401:
        rc = CLI_EXIT_PERMISSION;
        hint = "; log in with \"conclave login --email EMAIL\" or pass --api-key";
        break;
    case 403:
        rc = CLI_EXIT_PERMISSION;
        hint = "; ask an admin of the project for a higher role";
        break;
    case 404:
        rc = CLI_EXIT_NOT_FOUND;
        break;
    case 409:
        rc = CLI_EXIT_CONFLICT;
        break;
    case 503:
    case 504:
        rc = CLI_EXIT_UNAVAILABLE;
        if (code != NULL && strcmp(code, "outcome_unknown") == 0) {
            hint = "; the write may or may not have happened: retry it with the same "
                   "--request-id";
        } else {
            hint = "; retry in a few seconds";
        }
        break;
    default:
        rc = status >= 200 && status < 300 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
        break;
    }
    snprintf(err, errlen, "%s: %s%s", what, msg, hint);
    if (rc != CLI_EXIT_OK) {
        cli_out_server_error(status, reply);
    }
    return rc;
}

char *cli_urlencode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1);
    if (out == NULL) {
        return NULL;
    }
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

int cli_request_id(char *buf, size_t len)
{
    unsigned char r[16];
    if (len < 37 || getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        return -1;
    }
    memcpy(buf, "cli-", 4);
    for (size_t i = 0; i < sizeof(r); i++) {
        snprintf(buf + 4 + 2 * i, 3, "%02x", r[i]);
    }
    return 0;
}
