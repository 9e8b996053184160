/*
 * The scenario grammar: what a request to the mock gets.
 *
 *     fixture:<id>[@whole|@cuts|@bytes|@random:<seed>]
 *     synth[:<key>=<value>[,<key>=<value>...]]
 *
 * The string comes from the x-mock-scenario header or the model name (docs/mock.md).
 * Parsing is pure and allocation-free: the fixture id is a slice of the input, so the
 * parsed scenario lives no longer than the string it was parsed from.
 */
#ifndef MOCK_SCENARIO_H
#define MOCK_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "request.h"

enum mock_scn_kind { MOCK_SCN_FIXTURE = 1, MOCK_SCN_SYNTH };

/* How fixture bytes are cut into writes. */
enum mock_delivery {
    MOCK_DELIVER_WHOLE = 0, /* one write */
    MOCK_DELIVER_CUTS,      /* at the meta's delivery.chunk_boundaries, pausing between */
    MOCK_DELIVER_BYTES,     /* one byte per write */
    MOCK_DELIVER_RANDOM,    /* seeded pieces of 1..48 bytes, 0..3 ms apart */
};

/* What interrupts a synthetic stream after `fault_after` tokens. */
enum mock_fault {
    MOCK_FAULT_NONE = 0,
    MOCK_FAULT_ERROR,    /* in-stream error event in the provider's format, then close */
    MOCK_FAULT_STALL,    /* send nothing more, keep the connection until the client leaves */
    MOCK_FAULT_RESET,    /* TCP reset */
    MOCK_FAULT_TRUNCATE, /* clean end of the HTTP body without the provider's terminator */
};

/* Limits of synth values; a larger value is a parse error. */
#define MOCK_SYNTH_MAX_TOKENS 10000000u
#define MOCK_SYNTH_MAX_CHUNK 1000u
#define MOCK_SYNTH_MAX_RATE 1000000.0
#define MOCK_SYNTH_MAX_DELAY_MS 600000u

struct mock_synth {
    enum mock_provider format; /* MOCK_PROV_NONE: the route's */
    uint32_t tokens;           /* content tokens, default 20 */
    double rate;               /* tokens per second; 0 = as fast as possible */
    uint8_t ts;                /* token text: 0 "tok<i> ", 1 "@<CLOCK_MONOTONIC us> ",
                                  2 "tok<i>@<CLOCK_MONOTONIC us> " (checkable and stamped) */
    bool usage;                /* emit usage as the provider does (default true) */
    uint32_t first_byte_ms;    /* delay before the response head */
    int status;                /* 200, or an HTTP error status 400..599 (no stream) */
    int retry_after;           /* seconds, -1 = none */
    uint32_t fail_first;       /* with status: only the first N requests of this scenario
                                  fail, later ones stream; 0 = every request fails */
    enum mock_fault fault;
    uint32_t fault_after;
    uint32_t chunk;         /* tokens per write when rate = 0, default 8 */
    uint32_t prompt_tokens; /* reported input tokens, default 10 */
};

struct mock_scenario {
    enum mock_scn_kind kind;
    /* fixture */
    const char *fixture_id; /* borrowed from the parsed string, not NUL-terminated */
    size_t fixture_id_len;
    enum mock_delivery delivery;
    uint32_t seed;
    /* synth */
    struct mock_synth synth;
};

/* Sets the synth defaults (tokens 20, chunk 8, usage on, status 200, prompt 10, ...). */
void mock_synth_defaults(struct mock_synth *s);

/*
 * Parses s[0..n).
 * Returns 0 with *out filled; 1 if the string is not a mock scenario at all (it does not
 * start with "fixture:" or "synth"), which the caller answers like an unknown model; or
 * -1 on a malformed scenario, with a one-line reason in err (always NUL-terminated).
 */
int mock_scenario_parse(const char *s, size_t n, struct mock_scenario *out, char *err,
                        size_t errlen);

const char *mock_fault_name(enum mock_fault f);

/*
 * The seeded generator behind @random:<seed> (mulberry32, the one the fixtures'
 * validate/replay-server.mjs uses, so a seed cuts a body the same way in both).
 * *state starts as the seed; returns the next 32-bit output.
 */
uint32_t mock_rng_next(uint32_t *state);

/* The next random piece: 1..48 bytes, preceded by a pause of 0..3 ms. */
void mock_random_piece(uint32_t *state, size_t *len, unsigned *pause_ms);

#endif
