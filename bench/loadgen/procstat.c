#include "procstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* utime and stime are fields 14 and 15; the command name (field 2) may hold spaces and
 * parentheses, so counting starts after its closing parenthesis. */
static int
read_cpu(int pid, double *cpu_s)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p++;
    /* p now points before field 3. */
    unsigned long long utime = 0, stime = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 14)
            utime = strtoull(tok, NULL, 10);
        if (field == 15) {
            stime = strtoull(tok, NULL, 10);
            break;
        }
    }
    if (field != 15)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    *cpu_s = (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
    return 0;
}

static int
read_rss(int pid, unsigned long long *kib)
{
    char path[64], line[256];
    int rc = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            *kib = strtoull(line + 6, NULL, 10);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

void
lg_procstat_sample(int pid, struct lg_proc_sample *out)
{
    memset(out, 0, sizeof(*out));
    unsigned long long rss = 0;
    double cpu = 0;
    if (pid <= 0 || read_cpu(pid, &cpu) != 0 || read_rss(pid, &rss) != 0)
        return;
    out->ok = true;
    out->cpu_s = cpu;
    out->rss_kib = rss;
}

double
lg_procstat_self_cpu(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}
