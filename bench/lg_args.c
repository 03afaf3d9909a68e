#include "lg_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int lg_args_num(const char *name, const char *s, double min, double max, double *out, char *err,
                size_t cap)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        snprintf(err, cap, "%s needs a number from %g to %g, not \"%s\"", name, min, max,
                 s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int lg_args_target(const char **targets, int *n, int max, const char *target, char *err, size_t cap)
{
    if (*n >= max) {
        snprintf(err, cap, "at most %d targets", max);
        return -1;
    }
    targets[(*n)++] = target;
    return 0;
}
