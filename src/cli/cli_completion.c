#include "cli/cli_completion.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Most words collected for one command; help texts hold far fewer. */
#define MAX_WORDS 48
#define MAX_WORD  40

/* A set of words, kept in first-seen order. */
struct words {
    char w[MAX_WORDS][MAX_WORD];
    size_t n;
};

static void add_word(struct words *ws, const char *s, size_t len)
{
    if (len == 0 || len >= MAX_WORD || ws->n == MAX_WORDS) {
        return;
    }
    for (size_t i = 0; i < ws->n; i++) {
        if (strlen(ws->w[i]) == len && strncmp(ws->w[i], s, len) == 0) {
            return;
        }
    }
    memcpy(ws->w[ws->n], s, len);
    ws->w[ws->n][len] = '\0';
    ws->n++;
}

/* Every "--name" of TEXT (lowercase letters and inner dashes) into OPTS. */
static void collect_options(const char *text, struct words *opts)
{
    for (const char *p = strstr(text, "--"); p != NULL; p = strstr(p + 2, "--")) {
        if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '-')) {
            continue;
        }
        size_t len = 2;
        while (islower((unsigned char)p[len]) ||
               (p[len] == '-' && islower((unsigned char)p[len + 1]))) {
            len++;
        }
        if (len > 2) {
            add_word(opts, p, len);
        }
    }
}

/* The subcommands of NAME: the word after "conclave NAME " on each line of TEXT that
 * starts with "usage: conclave NAME" or with spaces and then "conclave NAME". */
static void collect_subcommands(const char *name, const char *text, struct words *subs)
{
    char lead[64];
    snprintf(lead, sizeof(lead), "conclave %s ", name);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *p = line;
        if (strncmp(p, "usage: ", 7) == 0) {
            p += 7;
        }
        while (*p == ' ') {
            p++;
        }
        if (strncmp(p, lead, strlen(lead)) == 0) {
            p += strlen(lead);
            size_t len = 0;
            while (islower((unsigned char)p[len]) || (p[len] == '-' && len > 0)) {
                len++;
            }
            if (len > 0 && (p[len] == ' ' || p[len] == '\n' || p[len] == '\0')) {
                add_word(subs, p, len);
            }
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
}

static void print_words(FILE *out, const struct words *ws)
{
    for (size_t i = 0; i < ws->n; i++) {
        fprintf(out, "%s%s", i ? " " : "", ws->w[i]);
    }
}

/* Options whose value is one of a few words, and those that take a file name. */
static const char value_cases[] = "    -o | --output) words=\"json table value\" ;;\n"
                                  "    --consistency) words=\"linearizable stale\" ;;\n"
                                  "    --scope) words=\"read read-write\" ;;\n"
                                  "    --source) words=\"api db\" ;;\n";
static const char file_options[] =
    "--config|--cacert|--client-cert|--client-key|--file|--out|--checkpoint";

struct entry {
    const char *name;
    struct words subs, opts;
};

/* One entry per top-level command; ENTRIES has room for every client command plus N. */
static size_t collect(const struct cli_completion_cmd *extra, size_t n, struct entry *entries)
{
    size_t k = 0;
    const struct cli_command *c;
    for (size_t i = 0; (c = cli_command_at(i)) != NULL; i++, k++) {
        entries[k].name = c->name;
        collect_subcommands(c->name, c->help, &entries[k].subs);
        collect_options(c->help, &entries[k].opts);
    }
    for (size_t i = 0; i < n; i++, k++) {
        entries[k].name = extra[i].name;
        if (extra[i].help != NULL) {
            collect_subcommands(extra[i].name, extra[i].help, &entries[k].subs);
            collect_options(extra[i].help, &entries[k].opts);
        }
    }
    return k;
}

static void print_bash(FILE *out, const struct entry *e, size_t n, const struct words *globals)
{
    fputs("# bash completion for conclave, made by \"conclave completion bash\" (docs/cli.md).\n"
          "_conclave() {\n"
          "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
          "  local words subs opts globals=\"",
          out);
    print_words(out, globals);
    fputs("\"\n  local commands=\"", out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s ", e[i].name);
    }
    fputs("help completion\"\n"
          "  if ((COMP_CWORD == 1)); then\n"
          "    mapfile -t COMPREPLY < <(compgen -W \"$commands\" -- \"$cur\")\n"
          "    return\n"
          "  fi\n"
          "  case $prev in\n",
          out);
    fputs(value_cases, out);
    fprintf(out, "    %s)\n", file_options);
    fputs("      mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
          "      return\n"
          "      ;;\n"
          "  esac\n"
          "  if [[ -n ${words:-} ]]; then\n"
          "    mapfile -t COMPREPLY < <(compgen -W \"$words\" -- \"$cur\")\n"
          "    return\n"
          "  fi\n"
          "  case ${COMP_WORDS[1]} in\n",
          out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "    %s) subs=\"", e[i].name);
        print_words(out, &e[i].subs);
        fputs("\" opts=\"", out);
        print_words(out, &e[i].opts);
        fputs("\" ;;\n", out);
    }
    fputs("    help) subs=\"${commands% help completion}\" ;;\n"
          "    completion) subs=\"bash zsh\" ;;\n"
          "  esac\n"
          "  if ((COMP_CWORD == 2)) && [[ -n ${subs:-} && $cur != -* ]]; then\n"
          "    mapfile -t COMPREPLY < <(compgen -W \"$subs\" -- \"$cur\")\n"
          "  elif [[ $cur == -* ]]; then\n"
          "    mapfile -t COMPREPLY < <(compgen -W \"${opts:-} $globals\" -- \"$cur\")\n"
          "  fi\n"
          "}\n"
          "complete -o default -F _conclave conclave\n",
          out);
}

static void print_zsh(FILE *out, const struct entry *e, size_t n, const struct words *globals)
{
    fputs("#compdef conclave\n"
          "# zsh completion for conclave, made by \"conclave completion zsh\" (docs/cli.md).\n"
          "_conclave() {\n"
          "  local -a commands subs opts words\n"
          "  local globals=\"",
          out);
    print_words(out, globals);
    fputs("\"\n  commands=(", out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s ", e[i].name);
    }
    fputs("help completion)\n"
          "  if ((CURRENT == 2)); then\n"
          "    compadd -a commands\n"
          "    return\n"
          "  fi\n"
          "  case ${words[CURRENT - 1]} in\n",
          out);
    /* The same value lists as bash, as zsh arrays. */
    fputs("    -o | --output) compadd json table value; return ;;\n"
          "    --consistency) compadd linearizable stale; return ;;\n"
          "    --scope) compadd read read-write; return ;;\n"
          "    --source) compadd api db; return ;;\n",
          out);
    fprintf(out, "    %s) _files; return ;;\n", file_options);
    fputs("  esac\n"
          "  case ${words[2]} in\n",
          out);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "    %s) subs=(", e[i].name);
        print_words(out, &e[i].subs);
        fputs(") opts=(", out);
        print_words(out, &e[i].opts);
        fputs(") ;;\n", out);
    }
    fputs("    help) subs=(${commands:#(help|completion)}) ;;\n"
          "    completion) subs=(bash zsh) ;;\n"
          "  esac\n"
          "  if ((CURRENT == 3)) && ((${#subs})) && [[ ${words[CURRENT]} != -* ]]; then\n"
          "    compadd -a subs\n"
          "  elif [[ ${words[CURRENT]} == -* ]]; then\n"
          "    compadd -- ${opts[@]} ${=globals}\n"
          "  else\n"
          "    _files\n"
          "  fi\n"
          "}\n"
          "compdef _conclave conclave\n",
          out);
}

int cli_completion_print(const char *shell, const struct cli_completion_cmd *extra, size_t n,
                         FILE *out)
{
    bool bash = strcmp(shell, "bash") == 0;
    if (!bash && strcmp(shell, "zsh") != 0) {
        return -1;
    }
    size_t clients = 0;
    while (cli_command_at(clients) != NULL) {
        clients++;
    }
    struct entry *entries = calloc(clients + n, sizeof(*entries));
    if (entries == NULL) {
        return -1;
    }
    struct words globals = {.n = 0};
    collect_options(cli_global_help(), &globals);
    add_word(&globals, "-o", 2);
    add_word(&globals, "-p", 2);
    size_t count = collect(extra, n, entries);
    if (bash) {
        print_bash(out, entries, count, &globals);
    } else {
        print_zsh(out, entries, count, &globals);
    }
    free(entries);
    return 0;
}
