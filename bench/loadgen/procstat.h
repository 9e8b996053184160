/*
 * Samples of another process from /proc: its CPU time (utime + stime of every thread, from
 * /proc/<pid>/stat, in clock ticks of usually 10 ms) and its resident set (VmRSS from
 * /proc/<pid>/status). The load generator takes them at its phase boundaries to report the
 * server's CPU per token and memory per connection; the server must run on the same host.
 */
#ifndef LG_PROCSTAT_H
#define LG_PROCSTAT_H

#include "stats.h"

/* Fills *out; out->ok is false (and the rest zero) if the process cannot be read. */
void lg_procstat_sample(int pid, struct lg_proc_sample *out);

/* CPU time of the calling process (user + system, all threads), in seconds. */
double lg_procstat_self_cpu(void);

#endif
