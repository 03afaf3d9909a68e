/*
 * lg_args: the command-line helpers both load generators share (conclave-lg and
 * conclave-lg-watch): a bounded number, and one more --target.
 */
#ifndef LG_ARGS_H
#define LG_ARGS_H

#include <stddef.h>

/* Parses a number in [MIN, MAX] from S (the value of option NAME; S may be NULL when the
 * option had none) into *OUT. Returns 0, or -1 with ERR saying what is wrong. */
int lg_args_num(const char *name, const char *s, double min, double max, double *out, char *err,
                size_t cap);

/* Appends TARGET (borrowed, "ip:port") to TARGETS, which holds *N of at most MAX. Returns 0,
 * or -1 with ERR saying the list is full. */
int lg_args_target(const char **targets, int *n, int max, const char *target, char *err,
                   size_t cap);

#endif
