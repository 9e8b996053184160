/*
 * Unit tests for src/config: YAML files written into a temporary directory, loaded, and
 * checked value by value; every kind of error checked for its file, line and key path.
 *
 * Criterion runs each test in its own process, so setenv/unsetenv in one test cannot
 * leak into another; the suite's init still clears every variable the loader reads so
 * that the developer's own environment (an OPENAI_API_KEY, say) cannot change results.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/codes.h"
#include "base/util.h"
#include "config/config.h"
#include "obs/log.h"

extern char **environ;

static char tmpdir[256];
static char repo_dir[1024];

static void
clean_env(void)
{
    static const char *const vars[] = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
                                       "OLLAMA_HOST"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    /* unsetenv reshuffles environ: restart the scan after each removal. */
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "SLUICE_", 7) == 0) {
                char name[256];
                size_t n = strcspn(*e, "=");
                cr_assert_lt(n, sizeof(name));
                memcpy(name, *e, n);
                name[n] = '\0';
                unsetenv(name);
                again = true;
                break;
            }
        }
    }
}

static void
setup(void)
{
    cr_assert_not_null(getcwd(repo_dir, sizeof(repo_dir)));
    clean_env();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sl-config-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    /* Messages then read "sluice.yaml:12: ..." exactly as an operator would see them. */
    cr_assert_eq(chdir(tmpdir), 0);
}

static void
teardown(void)
{
    DIR *d = opendir(tmpdir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            char p[512];
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
        closedir(d);
    }
    if (chdir(repo_dir) != 0)
        return;
    rmdir(tmpdir);
}

static void
write_file(const char *name, const char *text)
{
    FILE *f = fopen(name, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads `yaml` as sluice.yaml; asserts success. */
static struct sl_config *
load_ok(const char *yaml)
{
    char err[512];
    struct sl_config *cfg = NULL;
    const char *path = NULL;
    if (yaml != NULL) {
        write_file("sluice.yaml", yaml);
        path = "sluice.yaml";
    }
    int rc = sl_config_load(path, &cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "load failed: %s", err);
    cr_assert_not_null(cfg);
    return cfg;
}

/* Loads `yaml` as sluice.yaml; asserts failure and returns the message. */
static const char *
load_err(const char *yaml)
{
    static char err[512];
    struct sl_config *cfg = (struct sl_config *)(uintptr_t)1;
    if (yaml != NULL)
        write_file("sluice.yaml", yaml);
    int rc = sl_config_load(yaml ? "sluice.yaml" : NULL, &cfg, err, sizeof(err));
    cr_assert(rc < 0 && strcmp(sl_config_strerror(rc), "unknown error") != 0,
              "expected an error code for:\n%s", yaml ? yaml : "(no file)");
    cr_assert_eq(cfg, (struct sl_config *)(uintptr_t)1, "*out must be untouched on error");
    cr_assert_null(strchr(err, '\n'), "one line: %s", err);
    return err;
}

TestSuite(config, .init = setup, .fini = teardown);

/* ---------------------------------------------------------------------------------------- */

Test(config, defaults_without_a_file)
{
    struct sl_config *cfg = load_ok(NULL);
    cr_expect_str_eq(cfg->listen_host, "127.0.0.1");
    cr_expect_eq(cfg->listen_port, 8080);
    cr_expect_eq(cfg->workers, 0);
    cr_expect_str_eq(cfg->web_root, "web");
    cr_expect_str_eq(cfg->default_model, "demo");
    cr_expect_str_eq(cfg->jwt.secret_env, "SLUICE_JWT_SECRET");
    cr_assert_eq(cfg->jwt.nalgorithms, 1);
    cr_expect_str_eq(cfg->jwt.algorithms[0], "HS256");
    cr_expect(cfg->jwt.secret_generated);
    cr_assert_not_null(cfg->jwt.secret);
    cr_expect_geq(strlen(cfg->jwt.secret), 32);
    cr_expect_eq(cfg->jwt.leeway_ms, 30000);
    cr_expect(cfg->jwt.require_exp);
    cr_expect_eq(cfg->limits.max_connections, 100000);
    cr_expect_eq(cfg->limits.max_streams_per_connection, 8);
    cr_expect_eq(cfg->limits.messages_per_minute, 60);
    cr_expect_eq(cfg->limits.max_message_bytes, 1048576);
    cr_expect_eq(cfg->limits.send_high_water, 1048576);
    cr_expect_eq(cfg->limits.auth_timeout_ms, 10000);
    cr_expect_eq(cfg->limits.max_header_bytes, 16384);
    cr_expect_eq(cfg->limits.max_body_bytes, 1048576);
    cr_expect_eq(cfg->limits.header_timeout_ms, 10000);
    cr_expect_eq(cfg->limits.keepalive_timeout_ms, 30000);
    cr_expect_eq(cfg->limits.body_timeout_ms, 10000);
    cr_expect_eq(cfg->limits.send_timeout_ms, 30000);
    cr_expect_eq(cfg->limits.max_queued_bytes, 0, "0: twice send_high_water");
    cr_expect_not(cfg->listen_reuse);
    cr_expect_eq(cfg->heartbeat.interval_ms, 25000);
    cr_expect_eq(cfg->heartbeat.timeout_ms, 60000);
    cr_expect_eq(cfg->resume.window_ms, 60000);
    cr_expect_eq(cfg->resume.max_events, 20000);
    cr_expect_null(cfg->redis.url);
    cr_expect_eq(cfg->shutdown.drain_timeout_ms, 30000);
    cr_expect_eq(cfg->shutdown.retry_after_ms, 1000);
    cr_expect_eq(cfg->log.level, SL_LOG_INFO);
    cr_expect_eq(cfg->log.format, SL_LOG_FORMAT_LOGFMT);
    cr_expect_not(cfg->debug.echo);
    cr_expect_eq(cfg->napi_keys, 0);
    cr_expect_eq(cfg->nallowed_origins, 0);
    /* With an empty environment: the demo provider and model only. */
    cr_assert_eq(cfg->nproviders, 1);
    cr_expect_str_eq(cfg->providers[0].name, "demo");
    cr_expect_eq(cfg->providers[0].kind, SL_PROVIDER_DEMO);
    cr_expect_null(cfg->providers[0].base_url);
    cr_expect_eq(cfg->providers[0].demo_tokens_per_second, 30);
    cr_assert_eq(cfg->nmodels, 1);
    const struct sl_config_model *m = sl_config_find_model(cfg, "demo");
    cr_assert_not_null(m);
    cr_expect_str_eq(m->provider, "demo");
    cr_expect_str_eq(m->upstream_model, "demo");
    cr_expect_eq(cfg->nagents, 0);
    sl_config_free(cfg);
}

Test(config, new_defaults_has_no_secret_and_reads_no_environment)
{
    setenv("SLUICE_LISTEN", "0.0.0.0:1", 1);
    setenv("OPENAI_API_KEY", "sk-test", 1);
    struct sl_config *cfg = sl_config_new_defaults();
    cr_expect_str_eq(cfg->listen_host, "127.0.0.1");
    cr_expect_null(cfg->jwt.secret);
    cr_expect_eq(cfg->nproviders, 1);
    sl_config_free(cfg);
}

Test(config, no_file_enables_providers_found_in_the_environment)
{
    setenv("OPENAI_API_KEY", "sk-openai", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant", 1);
    setenv("OLLAMA_HOST", "10.0.0.5", 1);
    struct sl_config *cfg = load_ok(NULL);
    cr_assert_eq(cfg->nproviders, 4);
    const struct sl_config_provider *p = sl_config_find_provider(cfg, "openai");
    cr_assert_not_null(p);
    cr_expect_eq(p->kind, SL_PROVIDER_OPENAI);
    cr_expect_str_eq(p->base_url, "https://api.openai.com/v1");
    cr_expect_str_eq(p->api_key, "sk-openai");
    p = sl_config_find_provider(cfg, "anthropic");
    cr_assert_not_null(p);
    cr_expect_str_eq(p->api_key, "sk-ant");
    cr_expect_str_eq(p->api_version, "2023-06-01");
    cr_expect_str_eq(p->base_url, "https://api.anthropic.com");
    p = sl_config_find_provider(cfg, "ollama");
    cr_assert_not_null(p);
    cr_expect_str_eq(p->base_url, "http://10.0.0.5:11434");
    cr_expect_null(p->api_key);
    cr_expect_null(sl_config_find_provider(cfg, "gemini"));

    static const char *const expect[][2] = {
        {"gpt-4o-mini", "openai"},
        {"gpt-4o", "openai"},
        {"claude-sonnet-4-5", "anthropic"},
        {"claude-haiku-4-5", "anthropic"},
        {"llama3.2", "ollama"},
        {"demo", "demo"},
    };
    cr_expect_eq(cfg->nmodels, 6);
    for (size_t i = 0; i < 6; i++) {
        const struct sl_config_model *m = sl_config_find_model(cfg, expect[i][0]);
        cr_assert_not_null(m, "model %s", expect[i][0]);
        cr_expect_str_eq(m->provider, expect[i][1]);
        cr_expect_str_eq(m->upstream_model, expect[i][0]);
    }
    cr_expect_eq(sl_config_find_model(cfg, "gpt-4o")->price_input_per_1m, 2.5);
    cr_expect_null(sl_config_find_model(cfg, "gemini-2.5-flash"));
    sl_config_free(cfg);
}

Test(config, ollama_host_forms)
{
    static const char *const cases[][2] = {
        {"http://gpu:8000/", "http://gpu:8000"},
        {"gpu:9999", "http://gpu:9999"},
        {"[::1]", "http://[::1]:11434"},
        {"https://ollama.example.com/api", "https://ollama.example.com/api"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv("OLLAMA_HOST", cases[i][0], 1);
        struct sl_config *cfg = load_ok(NULL);
        const struct sl_config_provider *p = sl_config_find_provider(cfg, "ollama");
        cr_assert_not_null(p);
        cr_expect_str_eq(p->base_url, cases[i][1], "OLLAMA_HOST=%s", cases[i][0]);
        sl_config_free(cfg);
    }
}

/* The example of DESIGN.md, with a real hash in place of "…". */
static const char design_example[] =
    "listen: 127.0.0.1:8080\n"
    "workers: auto\n"
    "auth:\n"
    "  jwt: { secret_env: SLUICE_JWT_SECRET, algorithms: [HS256], issuer: null, audience: null }\n"
    "  api_keys: [ { name: ci, sha256: "
    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\" } ]\n"
    "  allowed_origins: [ \"https://app.example.com\" ]   # plus the server's own origin\n"
    "limits: { max_connections: 100000, max_streams_per_connection: 8, messages_per_minute: 60,\n"
    "          max_message_bytes: 1048576, send_high_water: 1048576, auth_timeout: 10s }\n"
    "heartbeat: { interval: 25s, timeout: 60s }\n"
    "resume: { window: 60s, max_events: 20000 }\n"
    "redis: { url: null }\n"
    "providers:\n"
    "  openai:    { kind: openai, base_url: https://api.openai.com/v1, api_key_env: "
    "OPENAI_API_KEY }\n"
    "  anthropic: { kind: anthropic, api_key_env: ANTHROPIC_API_KEY }\n"
    "  gemini:    { kind: gemini, api_key_env: GEMINI_API_KEY }\n"
    "  ollama:    { kind: ollama, base_url: http://127.0.0.1:11434 }\n"
    "models:\n"
    "  gpt-4o: { provider: openai, fallback: [claude-sonnet], price: { input_per_1m: 2.5, "
    "output_per_1m: 10 } }\n"
    "  claude-sonnet: { provider: anthropic, upstream_model: claude-sonnet-4-5 }\n"
    "agents:\n"
    "  analyst: { model: gpt-4o, system: \"You are a careful analyst.\", temperature: 0.3 }\n";

Test(config, design_example_loads_with_every_value_in_place)
{
    setenv("SLUICE_JWT_SECRET", "a-very-long-secret-for-the-tests-0123456789", 1);
    setenv("OPENAI_API_KEY", "sk-openai", 1);
    struct sl_config *cfg = load_ok(design_example);

    cr_expect_str_eq(cfg->listen_host, "127.0.0.1");
    cr_expect_eq(cfg->listen_port, 8080);
    cr_expect_eq(cfg->workers, 0);
    cr_expect_str_eq(cfg->jwt.secret, "a-very-long-secret-for-the-tests-0123456789");
    cr_expect_not(cfg->jwt.secret_generated);
    cr_assert_eq(cfg->jwt.nalgorithms, 1);
    cr_expect_str_eq(cfg->jwt.algorithms[0], "HS256");
    cr_expect_null(cfg->jwt.issuer);
    cr_expect_null(cfg->jwt.audience);

    cr_assert_eq(cfg->napi_keys, 1);
    cr_expect_str_eq(cfg->api_keys[0].name, "ci");
    static const uint8_t test_hash[32] = {0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65,
                                          0x9a, 0x2f, 0xea, 0xa0, 0xc5, 0x5a, 0xd0, 0x15,
                                          0xa3, 0xbf, 0x4f, 0x1b, 0x2b, 0x0b, 0x82, 0x2c,
                                          0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0, 0x0a, 0x08};
    cr_expect_arr_eq(cfg->api_keys[0].sha256, test_hash, 32);
    cr_assert_eq(cfg->nallowed_origins, 1);
    cr_expect_str_eq(cfg->allowed_origins[0], "https://app.example.com");

    cr_expect_eq(cfg->limits.max_connections, 100000);
    cr_expect_eq(cfg->limits.max_streams_per_connection, 8);
    cr_expect_eq(cfg->limits.messages_per_minute, 60);
    cr_expect_eq(cfg->limits.max_message_bytes, 1048576);
    cr_expect_eq(cfg->limits.send_high_water, 1048576);
    cr_expect_eq(cfg->limits.auth_timeout_ms, 10000);
    cr_expect_eq(cfg->heartbeat.interval_ms, 25000);
    cr_expect_eq(cfg->heartbeat.timeout_ms, 60000);
    cr_expect_eq(cfg->resume.window_ms, 60000);
    cr_expect_eq(cfg->resume.max_events, 20000);
    cr_expect_null(cfg->redis.url);

    /* demo stays, then the file's providers in order. */
    cr_assert_eq(cfg->nproviders, 5);
    cr_expect_str_eq(cfg->providers[0].name, "demo");
    const struct sl_config_provider *p = sl_config_find_provider(cfg, "openai");
    cr_assert_not_null(p);
    cr_expect_eq(p->kind, SL_PROVIDER_OPENAI);
    cr_expect_str_eq(p->base_url, "https://api.openai.com/v1");
    cr_expect_str_eq(p->api_key_env, "OPENAI_API_KEY");
    cr_expect_str_eq(p->api_key, "sk-openai");
    cr_expect_eq(p->connect_timeout_ms, 10000);
    cr_expect_eq(p->first_byte_timeout_ms, 60000);
    cr_expect_eq(p->idle_timeout_ms, 60000);
    cr_expect_eq(p->max_connections, 1024);
    cr_expect_eq(p->max_queued, 1024);
    cr_expect_eq(p->min_idle, 0);
    cr_expect_eq(p->max_retries, 2);
    cr_expect_eq(p->retry_base_ms, 250);
    cr_expect(p->tls_verify);
    p = sl_config_find_provider(cfg, "anthropic");
    cr_assert_not_null(p);
    cr_expect_eq(p->kind, SL_PROVIDER_ANTHROPIC);
    cr_expect_str_eq(p->base_url, "https://api.anthropic.com");
    cr_expect_str_eq(p->api_version, "2023-06-01");
    cr_expect_null(p->api_key, "a missing key is not an error");
    p = sl_config_find_provider(cfg, "gemini");
    cr_assert_not_null(p);
    cr_expect_str_eq(p->base_url, "https://generativelanguage.googleapis.com");
    p = sl_config_find_provider(cfg, "ollama");
    cr_assert_not_null(p);
    cr_expect_eq(p->kind, SL_PROVIDER_OLLAMA);
    cr_expect_str_eq(p->base_url, "http://127.0.0.1:11434");

    cr_assert_eq(cfg->nmodels, 3, "demo plus the file's two; no default models");
    const struct sl_config_model *m = sl_config_find_model(cfg, "gpt-4o");
    cr_assert_not_null(m);
    cr_expect_str_eq(m->provider, "openai");
    cr_expect_str_eq(m->upstream_model, "gpt-4o");
    cr_assert_eq(m->nfallback, 1);
    cr_expect_str_eq(m->fallback[0], "claude-sonnet");
    cr_expect_eq(m->price_input_per_1m, 2.5);
    cr_expect_eq(m->price_output_per_1m, 10);
    m = sl_config_find_model(cfg, "claude-sonnet");
    cr_assert_not_null(m);
    cr_expect_str_eq(m->provider, "anthropic");
    cr_expect_str_eq(m->upstream_model, "claude-sonnet-4-5");
    cr_expect_not_null(sl_config_find_model(cfg, "demo"));

    const struct sl_config_agent *a = sl_config_find_agent(cfg, "analyst");
    cr_assert_not_null(a);
    cr_expect_str_eq(a->model, "gpt-4o");
    cr_expect_str_eq(a->system, "You are a careful analyst.");
    cr_expect(a->has_temperature);
    cr_expect_eq(a->temperature, 0.3);
    cr_expect_eq(a->max_tokens, 0);
    sl_config_free(cfg);
}

Test(config, every_scalar_key_in_block_style)
{
    write_file("pub.pem", "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n");
    struct sl_config *cfg = load_ok("listen: \"[::1]:9000\"\n"
                                    "workers: 3\n"
                                    "web_root: /srv/www\n"
                                    "default_model: fast\n"
                                    "auth:\n"
                                    "  jwt:\n"
                                    "    secret: file-secret\n"
                                    "    secret_env: MY_SECRET\n"
                                    "    algorithms: [HS512, RS256, ES384]\n"
                                    "    public_key_file: pub.pem\n"
                                    "    issuer: https://issuer.example\n"
                                    "    audience: sluice\n"
                                    "    leeway: 250ms\n"
                                    "    require_exp: false\n"
                                    "  allowed_origins: ['*', 'http://localhost:3000']\n"
                                    "limits:\n"
                                    "  max_header_bytes: 32KiB\n"
                                    "  max_body_bytes: 2MiB\n"
                                    "  header_timeout: 1m\n"
                                    "  keepalive_timeout: 1h\n"
                                    "resume: {window: 0}\n"
                                    "redis: {url: 'redis://:pw@cache:6379/2'}\n"
                                    "shutdown: {drain_timeout: 5s, retry_after: 2s}\n"
                                    "log: {level: debug, format: json}\n"
                                    "debug: {echo: true}\n"
                                    "models:\n"
                                    "  fast: {provider: demo, max_tokens: 100}\n");
    cr_expect_str_eq(cfg->listen_host, "::1");
    cr_expect_eq(cfg->listen_port, 9000);
    cr_expect_eq(cfg->workers, 3);
    cr_expect_str_eq(cfg->web_root, "/srv/www");
    cr_expect_str_eq(cfg->default_model, "fast");
    cr_expect_str_eq(cfg->jwt.secret, "file-secret");
    cr_expect_not(cfg->jwt.secret_generated);
    cr_expect_str_eq(cfg->jwt.secret_env, "MY_SECRET");
    cr_assert_eq(cfg->jwt.nalgorithms, 3);
    cr_expect_str_eq(cfg->jwt.algorithms[2], "ES384");
    cr_expect_str_eq(cfg->jwt.public_key_file, "pub.pem");
    cr_assert_not_null(cfg->jwt.public_key);
    cr_expect(strstr(cfg->jwt.public_key, "BEGIN PUBLIC KEY") != NULL);
    cr_expect_str_eq(cfg->jwt.issuer, "https://issuer.example");
    cr_expect_str_eq(cfg->jwt.audience, "sluice");
    cr_expect_eq(cfg->jwt.leeway_ms, 250);
    cr_expect_not(cfg->jwt.require_exp);
    cr_assert_eq(cfg->nallowed_origins, 2);
    cr_expect_str_eq(cfg->allowed_origins[0], "*");
    cr_expect_eq(cfg->limits.max_header_bytes, 32768);
    cr_expect_eq(cfg->limits.max_body_bytes, 2 * 1048576);
    cr_expect_eq(cfg->limits.header_timeout_ms, 60000);
    cr_expect_eq(cfg->limits.keepalive_timeout_ms, 3600000);
    cr_expect_eq(cfg->resume.window_ms, 0);
    cr_expect_str_eq(cfg->redis.url, "redis://:pw@cache:6379/2");
    cr_expect_eq(cfg->shutdown.drain_timeout_ms, 5000);
    cr_expect_eq(cfg->shutdown.retry_after_ms, 2000);
    cr_expect_eq(cfg->log.level, SL_LOG_DEBUG);
    cr_expect_eq(cfg->log.format, SL_LOG_FORMAT_JSON);
    cr_expect(cfg->debug.echo);
    cr_expect_eq(sl_config_find_model(cfg, "fast")->max_tokens, 100);
    sl_config_free(cfg);
}

Test(config, listen_forms)
{
    static const struct {
        const char *text, *host;
        unsigned port;
    } cases[] = {
        {"127.0.0.1:8080", "127.0.0.1", 8080},
        {":8080", "0.0.0.0", 8080},
        {"'*:80'", "0.0.0.0", 80},
        {"'[::1]:8080'", "::1", 8080},
        {"'[::]:443'", "::", 443},
        {"localhost:0", "127.0.0.1", 0},
        {"10.1.2.3:65535", "10.1.2.3", 65535},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "listen: %s\n", cases[i].text);
        struct sl_config *cfg = load_ok(yaml);
        cr_expect_str_eq(cfg->listen_host, cases[i].host, "%s", cases[i].text);
        cr_expect_eq(cfg->listen_port, cases[i].port, "%s", cases[i].text);
        sl_config_free(cfg);
    }
    static const char *const bad[] = {
        "8080",       "'::1:8080'",     "1.2.3.4:65536", "host.example:80",
        "'1.2.3.4:'", "'[1.2.3.4]:80'", "1.2.3.4:80x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "listen: %s\n", bad[i]);
        const char *err = load_err(yaml);
        cr_expect(strncmp(err, "sluice.yaml:1: listen: expected host:port", 41) == 0, "%s: %s",
                  bad[i], err);
    }
}

Test(config, provider_entries_and_kind_defaults)
{
    setenv("GEMINI_API_KEY", "g-env", 1);
    struct sl_config *cfg = load_ok("providers:\n"
                                    "  corp:\n"
                                    "    kind: openai\n"
                                    "    base_url: https://llm.corp.example/v1/\n"
                                    "    api_key: literal-key\n"
                                    "    headers: {X-Team: search, OpenAI-Organization: org-1}\n"
                                    "    connect_timeout: 2s\n"
                                    "    first_byte_timeout: 30s\n"
                                    "    idle_timeout: 15s\n"
                                    "    max_connections: 8\n"
                                    "    max_retries: 0\n"
                                    "    retry_base: 100ms\n"
                                    "    tls_verify: false\n"
                                    "  gemini: {}\n"
                                    "  ollama:\n"
                                    "  slow: {kind: demo, tokens_per_second: 2.5}\n"
                                    "models:\n"
                                    "  m: {provider: corp}\n");
    const struct sl_config_provider *p = sl_config_find_provider(cfg, "corp");
    cr_assert_not_null(p);
    cr_expect_eq(p->kind, SL_PROVIDER_OPENAI);
    cr_expect_str_eq(p->base_url, "https://llm.corp.example/v1", "trailing slash dropped");
    cr_expect_str_eq(p->api_key, "literal-key");
    cr_assert_eq(p->nheaders, 2);
    cr_expect_str_eq(p->headers[0].name, "X-Team");
    cr_expect_str_eq(p->headers[0].value, "search");
    cr_expect_str_eq(p->headers[1].name, "OpenAI-Organization");
    cr_expect_eq(p->connect_timeout_ms, 2000);
    cr_expect_eq(p->first_byte_timeout_ms, 30000);
    cr_expect_eq(p->idle_timeout_ms, 15000);
    cr_expect_eq(p->max_connections, 8);
    cr_expect_eq(p->max_retries, 0);
    cr_expect_eq(p->retry_base_ms, 100);
    cr_expect_not(p->tls_verify);
    p = sl_config_find_provider(cfg, "gemini");
    cr_assert_not_null(p);
    cr_expect_eq(p->kind, SL_PROVIDER_GEMINI, "kind defaults to the name");
    cr_expect_str_eq(p->api_key_env, "GEMINI_API_KEY");
    cr_expect_str_eq(p->api_key, "g-env");
    p = sl_config_find_provider(cfg, "ollama");
    cr_assert_not_null(p, "a null entry takes every default");
    cr_expect_str_eq(p->base_url, "http://127.0.0.1:11434");
    cr_expect_null(p->api_key_env);
    p = sl_config_find_provider(cfg, "slow");
    cr_assert_not_null(p);
    cr_expect_eq(p->demo_tokens_per_second, 2.5);
    cr_expect_null(sl_config_find_provider(cfg, "openai"), "a providers section disables "
                                                           "detection");
    sl_config_free(cfg);
}

Test(config, file_providers_without_models_get_default_models)
{
    struct sl_config *cfg = load_ok("providers: {anthropic: {}}\n");
    const struct sl_config_model *m = sl_config_find_model(cfg, "claude-haiku-4-5");
    cr_assert_not_null(m);
    cr_expect_str_eq(m->provider, "anthropic");
    cr_expect_eq(m->price_output_per_1m, 5);
    sl_config_free(cfg);
}

Test(config, file_may_redefine_demo)
{
    struct sl_config *cfg =
        load_ok("providers:\n"
                "  demo: {kind: demo, tokens_per_second: 1000}\n"
                "models:\n"
                "  demo: {provider: demo, upstream_model: lorem, max_tokens: 7}\n");
    cr_assert_eq(cfg->nproviders, 1);
    cr_expect_eq(cfg->providers[0].demo_tokens_per_second, 1000);
    cr_assert_eq(cfg->nmodels, 1);
    cr_expect_str_eq(cfg->models[0].upstream_model, "lorem");
    cr_expect_eq(cfg->models[0].max_tokens, 7);
    sl_config_free(cfg);
}

Test(config, anchors_and_aliases)
{
    struct sl_config *cfg = load_ok("providers:\n"
                                    "  a: &base {kind: openai, max_retries: 5}\n"
                                    "  b: *base\n"
                                    "models: {x: {provider: b}}\n");
    cr_expect_eq(sl_config_find_provider(cfg, "a")->max_retries, 5);
    cr_expect_eq(sl_config_find_provider(cfg, "b")->max_retries, 5);
    sl_config_free(cfg);
}

Test(config, empty_file_is_all_defaults)
{
    struct sl_config *cfg = load_ok("# nothing here\n");
    cr_expect_eq(cfg->listen_port, 8080);
    cr_expect_eq(cfg->nmodels, 1);
    sl_config_free(cfg);
}

/* ---------------------------------------------------------------------------------------- */
/* Errors: file, line, full key path, what was expected.                                    */

struct err_case {
    const char *yaml;
    const char *err;
};

static const struct err_case err_cases[] = {
    /* unknown keys, with and without a suggestion */
    {"listen: :8080\nauth:\n  jwt:\n    secert: x\n",
     "sluice.yaml:4: unknown key auth.jwt.secert (did you mean secret?)"},
    {"limit:\n  max_connections: 5\n", "sluice.yaml:1: unknown key limit (did you mean limits?)"},
    {"limits: {max_conections: 5}\n",
     "sluice.yaml:1: unknown key limits.max_conections (did you mean max_connections?)"},
    {"colour: blue\n", "sluice.yaml:1: unknown key colour"},
    {"providers:\n  openai:\n    base_ur: http://x\n",
     "sluice.yaml:3: unknown key providers.openai.base_ur (did you mean base_url?)"},
    {"models:\n  m:\n    provider: demo\n    price: {input: 1}\n",
     "sluice.yaml:4: unknown key models.m.price.input (did you mean input_per_1m?)"},
    /* wrong types */
    {"\n\n\n\n\n\n\n\n\n\n\nlimits:\n  max_streams_per_connection: many\n",
     "sluice.yaml:13: limits.max_streams_per_connection: expected a positive integer, got "
     "\"many\""},
    {"limits: 5\n", "sluice.yaml:1: limits: expected a mapping, got a string"},
    {"listen: [a]\n",
     "sluice.yaml:1: listen: expected host:port such as 127.0.0.1:8080, :8080 or [::1]:8080, got "
     "a list"},
    {"debug:\n  echo: maybe\n", "sluice.yaml:2: debug.echo: expected true or false, got \"maybe\""},
    {"workers: lots\n",
     "sluice.yaml:1: workers: expected auto or a non-negative integer, got \"lots\""},
    {"web_root: {a: 1}\n", "sluice.yaml:1: web_root: expected a string, got a mapping"},
    {"web_root:\n", "sluice.yaml:1: web_root: expected a string, got null"},
    {"log:\n  level: loud\n",
     "sluice.yaml:2: log.level: expected one of debug, info, warn, error, got \"loud\""},
    {"agents:\n  a:\n    model: demo\n    temperature: hot\n",
     "sluice.yaml:4: agents.a.temperature: expected a number, got \"hot\""},
    /* bad duration, bad size */
    {"heartbeat:\n  interval: 25 parsecs\n",
     "sluice.yaml:2: heartbeat.interval: expected a duration such as 25s, 250ms, 1m or a number "
     "of seconds, got \"25 parsecs\""},
    {"limits:\n\n  max_message_bytes: 1ZB\n",
     "sluice.yaml:3: limits.max_message_bytes: expected a size such as 65536, 64KiB or 1MiB, got "
     "\"1ZB\""},
    /* out of range */
    {"limits: {max_connections: 0}\n",
     "sluice.yaml:1: limits.max_connections: expected an integer from 1 to 10000000, got \"0\""},
    {"workers: 5000\n", "sluice.yaml:1: workers: expected an integer from 0 to 1024, got \"5000\""},
    {"limits: {max_connections: -3}\n",
     "sluice.yaml:1: limits.max_connections: expected an integer from 1 to 10000000, got \"-3\""},
    {"limits: {auth_timeout: 2h}\n",
     "sluice.yaml:1: limits.auth_timeout: expected a duration from 1ms to 1h, got \"2h\""},
    {"limits: {max_header_bytes: 100}\n",
     "sluice.yaml:1: limits.max_header_bytes: expected a size from 256 to 16MiB, got \"100\""},
    {"agents:\n  a: {model: demo, temperature: 2.5}\n",
     "sluice.yaml:2: agents.a.temperature: expected a number from 0 to 2, got \"2.5\""},
    {"heartbeat:\n  interval: 30s\n  timeout: 20s\n",
     "sluice.yaml:3: heartbeat.timeout: must be longer than heartbeat.interval (30s), got 20s"},
    {"heartbeat:\n  interval: 90s\n",
     "sluice.yaml:2: heartbeat.interval: must be shorter than heartbeat.timeout (60s), got 90s"},
    /* references */
    {"models:\n  gpt:\n    provider: openia\n",
     "sluice.yaml:3: models.gpt.provider: no provider named \"openia\""},
    {"models:\n  gpt: {provider: anthropic}\n",
     "sluice.yaml:2: models.gpt.provider: no provider named \"anthropic\" (set ANTHROPIC_API_KEY, "
     "or add it under providers:)"},
    {"providers: {}\nmodels:\n  gpt: {provider: anthropic}\n",
     "sluice.yaml:3: models.gpt.provider: no provider named \"anthropic\""},
    {"models:\n  gpt: {upstream_model: x}\n", "sluice.yaml:2: models.gpt: provider is required"},
    {"models:\n  a:\n    provider: demo\n    fallback:\n      - demo\n      - nope\n",
     "sluice.yaml:6: models.a.fallback: no model named \"nope\""},
    {"models:\n  a: {provider: demo, fallback: [b]}\n  b: {provider: demo, fallback: [c]}\n"
     "  c:\n    provider: demo\n    fallback:\n      - demo\n      - a\n",
     "sluice.yaml:8: models.c.fallback: fallback cycle a -> b -> c -> a"},
    {"models:\n  a: {provider: demo, fallback: a}\n",
     "sluice.yaml:2: models.a.fallback: fallback cycle a -> a"},
    {"agents:\n  writer:\n    model: gpt-5\n",
     "sluice.yaml:3: agents.writer.model: no model named \"gpt-5\""},
    {"agents:\n  writer: {system: hi}\n", "sluice.yaml:2: agents.writer: model is required"},
    {"default_model: nope\n", "sluice.yaml:1: default_model: no model named \"nope\""},
    {"providers:\n  corp: {base_url: https://x}\n",
     "sluice.yaml:2: providers.corp: kind is required (one of demo, openai, anthropic, gemini, "
     "ollama)"},
    {"providers:\n  corp: {kind: mistral}\n",
     "sluice.yaml:2: providers.corp.kind: expected one of demo, openai, anthropic, gemini, "
     "ollama, got \"mistral\""},
    {"providers:\n  o: {kind: openai, base_url: ftp://x}\n",
     "sluice.yaml:2: providers.o.base_url: expected an http:// or https:// URL, got \"ftp://x\""},
    {"providers:\n  o:\n    kind: openai\n    headers: {\"Bad Header\": x}\n",
     "sluice.yaml:4: providers.o.headers.Bad Header: not a valid header name"},
    {"providers:\n  o:\n    kind: openai\n    ca_file: /nonexistent/ca.pem\n",
     "sluice.yaml:4: providers.o.ca_file: cannot read \"/nonexistent/ca.pem\": No such file or "
     "directory"},
    /* algorithms */
    {"auth:\n  jwt:\n    algorithms:\n      - HS256\n      - HS255\n",
     "sluice.yaml:5: auth.jwt.algorithms: expected one of HS256, HS384, HS512, RS256, RS384, "
     "RS512, ES256, ES384, ES512, got \"HS255\""},
    {"auth: {jwt: {algorithms: [none]}}\n",
     "sluice.yaml:1: auth.jwt.algorithms: \"none\" is refused: it would accept unsigned tokens"},
    {"auth: {jwt: {algorithms: [NONE]}}\n",
     "sluice.yaml:1: auth.jwt.algorithms: \"none\" is refused: it would accept unsigned tokens"},
    {"auth:\n  jwt:\n    algorithms: [RS256]\n",
     "sluice.yaml:3: auth.jwt.algorithms: RS256 needs auth.jwt.public_key_file"},
    {"auth:\n  jwt:\n    algorithms: [ES256]\n    public_key_file: missing.pem\n",
     "sluice.yaml:4: auth.jwt.public_key_file: cannot read \"missing.pem\": No such file or "
     "directory"},
    /* api keys and origins */
    {"auth:\n  api_keys:\n    - {name: ci, sha256: abc}\n",
     "sluice.yaml:3: auth.api_keys[0].sha256: expected 64 hexadecimal digits (a SHA-256)"},
    {"auth:\n  api_keys:\n    - {name: ci, key_env: SL_TEST_UNSET_KEY}\n",
     "sluice.yaml:3: auth.api_keys[0].key_env: environment variable SL_TEST_UNSET_KEY is not set"},
    {"auth:\n  api_keys:\n    - {name: ci}\n",
     "sluice.yaml:3: auth.api_keys[0]: expected exactly one of sha256 and key_env"},
    {"auth:\n  api_keys:\n    - {sha256: "
     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}\n",
     "sluice.yaml:3: auth.api_keys[0]: name is required"},
    {"auth:\n  allowed_origins: [\"https://app.example.com/\"]\n",
     "sluice.yaml:2: auth.allowed_origins: expected an origin such as \"https://app.example.com\" "
     "(scheme, host, optional port, no path) or \"*\", got \"https://app.example.com/\""},
    /* structure */
    {"limits:\n  max_connections: 1\n  max_connections: 2\n",
     "sluice.yaml:3: duplicate key limits.max_connections (first at line 2)"},
    {"- a\n- b\n", "sluice.yaml:1: top level: expected a mapping, got a list"},
    {"a: 1\n---\nb: 2\n", "sluice.yaml:2: only one YAML document is allowed"},
    {"redis:\n  url: http://cache\n",
     "sluice.yaml:2: redis.url: expected redis://[:password@]host[:port][/db] or unix:///path"},
    /* YAML syntax errors carry libyaml's line */
    {"listen: :8080\nlimits:\n  max_connections: 5\n bad: indent\n",
     "sluice.yaml:4: YAML syntax error: did not find expected key at column 2 (while parsing a "
     "block mapping started at line 1)"},
    {"limits: {max_connections: 5\nheartbeat: x\n",
     "sluice.yaml:2: YAML syntax error: did not find expected ',' or '}' at column 10 (while "
     "parsing a flow mapping started at line 1)"},
    {"a: *nowhere\n", "sluice.yaml:1: YAML syntax error: found undefined alias at column 4"},
};

Test(config, errors_name_line_and_key_path)
{
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const char *err = load_err(err_cases[i].yaml);
        cr_expect_str_eq(err, err_cases[i].err, "case %zu:\n%s\ngot: %s", i, err_cases[i].yaml,
                         err);
    }
}

Test(config, missing_file)
{
    char err[256];
    struct sl_config *cfg = NULL;
    cr_assert_eq(sl_config_load("nope.yaml", &cfg, err, sizeof(err)), SL_CONFIG_EFILE);
    cr_expect_str_eq(err, "nope.yaml: cannot open: No such file or directory");
    cr_expect_null(cfg);
}

Test(config, secrets_are_never_echoed_in_errors)
{
    const char *err = load_err("auth:\n  jwt:\n    secret: {not: scalar}\n");
    cr_expect_str_eq(err, "sluice.yaml:3: auth.jwt.secret: expected a string, got a mapping");
    err = load_err("redis: {url: 'http://:hunter2@cache'}\n");
    cr_expect_null(strstr(err, "hunter2"), "%s", err);
}

Test(config, tiny_error_buffer_is_truncated_not_overrun)
{
    char err[8];
    struct sl_config *cfg = NULL;
    write_file("sluice.yaml", "limits: {max_connections: many}\n");
    cr_assert_eq(sl_config_load("sluice.yaml", &cfg, err, sizeof(err)), SL_CONFIG_EVALUE);
    cr_expect_eq(strlen(err), 7);
    cr_assert_eq(sl_config_load("sluice.yaml", &cfg, NULL, 0), SL_CONFIG_EVALUE);
}

/* The code says which stage refused the configuration; the message says where and why. */
Test(config, error_codes_name_the_stage)
{
    char err[256];
    struct sl_config *cfg = NULL;
    write_file("sluice.yaml", "limits: [unclosed\n");
    cr_expect_eq(sl_config_load("sluice.yaml", &cfg, err, sizeof(err)), SL_CONFIG_EFILE, "%s", err);
    write_file("sluice.yaml", "limits: {max_connections: many}\n");
    cr_expect_eq(sl_config_load("sluice.yaml", &cfg, err, sizeof(err)), SL_CONFIG_EVALUE, "%s",
                 err);
    write_file("sluice.yaml", "models: {m: {provider: nobody}}\n");
    cr_expect_eq(sl_config_load("sluice.yaml", &cfg, err, sizeof(err)), SL_CONFIG_ERULE, "%s", err);
    setenv("SLUICE_LIMITS_MAX_CONNECTIONS", "many", 1);
    cr_expect_eq(sl_config_load(NULL, &cfg, err, sizeof(err)), SL_CONFIG_EENV, "%s", err);
    cr_expect_null(cfg);
    cr_expect_str_eq(sl_config_strerror(SL_CONFIG_ERULE), "inconsistent configuration");
    cr_expect_str_eq(sl_err_layer(SL_CONFIG_EENV), "config");
}

/* ---------------------------------------------------------------------------------------- */
/* Environment                                                                              */

Test(config, environment_wins_over_the_file)
{
    setenv("SLUICE_LISTEN", ":9999", 1);
    setenv("SLUICE_WORKERS", "auto", 1);
    setenv("SLUICE_LIMITS_MAX_CONNECTIONS", "77", 1);
    setenv("SLUICE_HEARTBEAT_INTERVAL", "5s", 1);
    setenv("SLUICE_AUTH_JWT_ISSUER", "env-issuer", 1);
    setenv("SLUICE_LOG_LEVEL", "warn", 1);
    setenv("SLUICE_DEBUG_ECHO", "1", 1);
    setenv("SLUICE_REDIS_URL", "redis://r:6379", 1);
    setenv("SLUICE_AUTH_ALLOWED_ORIGINS", " https://a.example , https://b.example:8443,", 1);
    setenv("SLUICE_AUTH_JWT_ALGORITHMS", "HS384", 1);
    setenv("SLUICE_LIMITS_MAX_MESSAGE_BYTES", "64KiB", 1);
    setenv("SLUICE_WEB_ROOT", "", 1); /* empty counts as unset */
    setenv("SLUICE_AUTH_JWT_REQUIRE_EXP", "false", 1);
    struct sl_config *cfg = load_ok("listen: 127.0.0.1:8080\n"
                                    "workers: 4\n"
                                    "web_root: site\n"
                                    "limits: {max_connections: 5}\n"
                                    "heartbeat: {interval: 10s}\n"
                                    "auth:\n"
                                    "  jwt: {issuer: file-issuer, algorithms: [HS256]}\n"
                                    "  allowed_origins: ['https://file.example']\n"
                                    "log: {level: error}\n");
    cr_expect_str_eq(cfg->listen_host, "0.0.0.0");
    cr_expect_eq(cfg->listen_port, 9999);
    cr_expect_eq(cfg->workers, 0);
    cr_expect_str_eq(cfg->web_root, "site");
    cr_expect_eq(cfg->limits.max_connections, 77);
    cr_expect_eq(cfg->heartbeat.interval_ms, 5000);
    cr_expect_str_eq(cfg->jwt.issuer, "env-issuer");
    cr_expect_eq(cfg->log.level, SL_LOG_WARN);
    cr_expect(cfg->debug.echo);
    cr_expect_str_eq(cfg->redis.url, "redis://r:6379");
    cr_assert_eq(cfg->nallowed_origins, 2);
    cr_expect_str_eq(cfg->allowed_origins[0], "https://a.example");
    cr_expect_str_eq(cfg->allowed_origins[1], "https://b.example:8443");
    cr_assert_eq(cfg->jwt.nalgorithms, 1);
    cr_expect_str_eq(cfg->jwt.algorithms[0], "HS384");
    cr_expect_eq(cfg->limits.max_message_bytes, 65536);
    cr_expect_not(cfg->jwt.require_exp);
    sl_config_free(cfg);
}

Test(config, bad_environment_value_names_the_variable)
{
    static const char *const cases[][3] = {
        {"SLUICE_LIMITS_MAX_CONNECTIONS", "lots",
         "SLUICE_LIMITS_MAX_CONNECTIONS: limits.max_connections: expected a positive integer, "
         "got \"lots\""},
        {"SLUICE_HEARTBEAT_TIMEOUT", "1 fortnight",
         "SLUICE_HEARTBEAT_TIMEOUT: heartbeat.timeout: expected a duration such as 25s, 250ms, 1m "
         "or a number of seconds, got \"1 fortnight\""},
        {"SLUICE_DEBUG_ECHO", "sure",
         "SLUICE_DEBUG_ECHO: debug.echo: expected true or false, got \"sure\""},
        {"SLUICE_LISTEN", "nowhere",
         "SLUICE_LISTEN: listen: expected host:port such as 127.0.0.1:8080, :8080 or [::1]:8080, "
         "got \"nowhere\""},
        {"SLUICE_AUTH_JWT_ALGORITHMS", "HS256,none",
         "SLUICE_AUTH_JWT_ALGORITHMS: auth.jwt.algorithms: \"none\" is refused: it would accept "
         "unsigned tokens"},
        {"SLUICE_HEARTBEAT_TIMEOUT", "10s",
         "SLUICE_HEARTBEAT_TIMEOUT: heartbeat.timeout: must be longer than heartbeat.interval "
         "(25s), got 10s"},
        {"SLUICE_DEFAULT_MODEL", "gpt-9",
         "SLUICE_DEFAULT_MODEL: default_model: no model named \"gpt-9\""},
        {"SLUICE_AUTH_JWT_PUBLIC_KEY_FILE", "/nonexistent.pem",
         "SLUICE_AUTH_JWT_PUBLIC_KEY_FILE: auth.jwt.public_key_file: cannot read "
         "\"/nonexistent.pem\": No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        setenv(cases[i][0], cases[i][1], 1);
        cr_expect_str_eq(load_err(NULL), cases[i][2]);
        /* The same with a file that sets the key: the variable is still blamed. */
        cr_expect_str_eq(load_err("heartbeat: {timeout: 70s}\n"), cases[i][2]);
        unsetenv(cases[i][0]);
    }
}

Test(config, jwt_secret_from_the_environment)
{
    /* secret_env (default SLUICE_JWT_SECRET) overrides the file's literal secret. */
    setenv("SLUICE_JWT_SECRET", "from-default-var", 1);
    struct sl_config *cfg = load_ok("auth: {jwt: {secret: from-file}}\n");
    cr_expect_str_eq(cfg->jwt.secret, "from-default-var");
    cr_expect_not(cfg->jwt.secret_generated);
    sl_config_free(cfg);

    setenv("MY_JWT", "from-my-var", 1);
    cfg = load_ok("auth: {jwt: {secret_env: MY_JWT}}\n");
    cr_expect_str_eq(cfg->jwt.secret, "from-my-var");
    sl_config_free(cfg);

    /* The explicit key override wins over the variable named by secret_env. */
    setenv("SLUICE_AUTH_JWT_SECRET", "explicit", 1);
    cfg = load_ok(NULL);
    cr_expect_str_eq(cfg->jwt.secret, "explicit");
    sl_config_free(cfg);
    unsetenv("SLUICE_AUTH_JWT_SECRET");
    unsetenv("SLUICE_JWT_SECRET");

    cfg = load_ok("auth: {jwt: {secret: from-file}}\n");
    cr_expect_str_eq(cfg->jwt.secret, "from-file");
    sl_config_free(cfg);
}

Test(config, no_secret_is_generated_without_an_hs_algorithm)
{
    write_file("pub.pem", "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n");
    struct sl_config *cfg =
        load_ok("auth: {jwt: {algorithms: [RS256], public_key_file: pub.pem}}\n");
    cr_expect_null(cfg->jwt.secret);
    cr_expect_not(cfg->jwt.secret_generated);
    sl_config_free(cfg);
    cfg = load_ok("auth: {jwt: {algorithms: []}}\n");
    cr_expect_eq(cfg->jwt.nalgorithms, 0);
    cr_expect_null(cfg->jwt.secret);
    sl_config_free(cfg);
}

Test(config, public_key_file_must_be_pem)
{
    write_file("key.txt", "not a key\n");
    const char *err = load_err("auth: {jwt: {algorithms: [ES256], public_key_file: key.txt}}\n");
    cr_expect_str_eq(err, "sluice.yaml:1: auth.jwt.public_key_file: \"key.txt\" is not a PEM file");
}

Test(config, ca_file_must_hold_pem_certificates)
{
    static const char cert[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    write_file("ca.pem", cert);
    struct sl_config *cfg = load_ok("providers: {o: {kind: openai, ca_file: ca.pem}}\n");
    cr_expect_str_eq(sl_config_find_provider(cfg, "o")->ca_file, "ca.pem");
    sl_config_free(cfg);
    write_file("ca.pem", "-----BEGIN TRUSTED CERTIFICATE-----\nMIIB\n");
    cfg = load_ok("providers: {o: {kind: openai, ca_file: ca.pem}}\n");
    sl_config_free(cfg);

    write_file("ca.der", "0\x82\x01\n");
    const char *err = load_err("providers:\n  o: {kind: openai, ca_file: ca.der}\n");
    cr_expect_str_eq(err, "sluice.yaml:2: providers.o.ca_file: \"ca.der\" is not a PEM file");
    write_file("key.pem", "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n");
    err = load_err("providers:\n  o: {kind: openai, ca_file: key.pem}\n");
    cr_expect_str_eq(err,
                     "sluice.yaml:2: providers.o.ca_file: \"key.pem\" holds no PEM certificate");
}

/* ---------------------------------------------------------------------------------------- */
/* API keys                                                                                 */

Test(config, api_keys_are_hashed_at_load)
{
    uint8_t want[32];
    setenv("CI_KEY", "test", 1);
    struct sl_config *cfg =
        load_ok("auth:\n"
                "  api_keys:\n"
                "    - {name: ci, key_env: CI_KEY}\n"
                "    - name: ops\n"
                "      sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\n");
    /* SHA-256("test"), a published test vector. */
    static const uint8_t test_hash[32] = {0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65,
                                          0x9a, 0x2f, 0xea, 0xa0, 0xc5, 0x5a, 0xd0, 0x15,
                                          0xa3, 0xbf, 0x4f, 0x1b, 0x2b, 0x0b, 0x82, 0x2c,
                                          0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0, 0x0a, 0x08};
    memcpy(want, test_hash, 32);
    cr_assert_eq(cfg->napi_keys, 2);
    cr_expect_str_eq(cfg->api_keys[0].name, "ci");
    cr_expect_arr_eq(cfg->api_keys[0].sha256, want, 32);
    cr_expect_str_eq(cfg->api_keys[1].name, "ops");
    cr_expect_arr_eq(cfg->api_keys[1].sha256, want, 32, "upper-case hex accepted");
    sl_config_free(cfg);
}

Test(config, api_key_names_are_unique)
{
    setenv("K1", "a", 1);
    setenv("K2", "b", 1);
    const char *err = load_err("auth:\n  api_keys:\n    - {name: ci, key_env: K1}\n"
                               "    - {name: ci, key_env: K2}\n");
    cr_expect_str_eq(err, "sluice.yaml:4: auth.api_keys[1].name: duplicate API key name \"ci\"");
}

/* ---------------------------------------------------------------------------------------- */
/* Limits per identity, tiers, budgets                                                      */

Test(config, limits_per_identity_defaults)
{
    struct sl_config *cfg = load_ok(NULL);
    cr_expect_eq(cfg->limits.max_streams_per_user, 64);
    cr_expect_eq(cfg->limits.max_connections_per_user, 256);
    cr_expect_eq(cfg->limits.max_connections_per_ip, 0);
    cr_expect_eq(cfg->limits.tokens_per_minute, 0);
    cr_expect_eq(cfg->limits.max_identities, 100000);
    cr_expect_eq(cfg->limits.ntiers, 0);
    cr_expect_eq(cfg->budgets.usd_per_day, 0);
    cr_expect_eq(cfg->budgets.usd_per_month, 0);
    cr_expect_str_eq(cfg->budgets.state_file, "sluice-budgets.json");
    sl_config_free(cfg);
}

Test(config, tiers_keep_what_they_leave_out_unset)
{
    setenv("K1", "a", 1);
    setenv("SLUICE_LIMITS_TOKENS_PER_MINUTE", "5000", 1);
    setenv("SLUICE_BUDGETS_USD_PER_DAY", "2.5", 1);
    struct sl_config *cfg = load_ok("limits:\n"
                                    "  max_streams_per_user: 0\n"
                                    "  max_connections_per_ip: 20\n"
                                    "  tiers:\n"
                                    "    free: {messages_per_minute: 10, budget_usd_per_day: 0.5}\n"
                                    "    pro:\n"
                                    "      max_streams_per_user: 32\n"
                                    "      tokens_per_minute: 0\n"
                                    "      budget_usd_per_month: 100\n"
                                    "budgets: {usd_per_month: 20, state_file: null}\n"
                                    "auth:\n"
                                    "  api_keys:\n"
                                    "    - {name: bot, key_env: K1, tier: pro}\n"
                                    "    - {name: other, key_env: K1}\n");
    unsetenv("SLUICE_LIMITS_TOKENS_PER_MINUTE");
    unsetenv("SLUICE_BUDGETS_USD_PER_DAY");
    cr_expect_eq(cfg->limits.max_streams_per_user, 0);
    cr_expect_eq(cfg->limits.max_connections_per_ip, 20);
    cr_expect_eq(cfg->limits.tokens_per_minute, 5000);
    cr_expect_eq(cfg->budgets.usd_per_day, 2.5);
    cr_expect_eq(cfg->budgets.usd_per_month, 20);
    cr_expect_null(cfg->budgets.state_file);
    cr_assert_eq(cfg->limits.ntiers, 2);
    const struct sl_config_tier *free_ = sl_config_find_tier(cfg, "free");
    const struct sl_config_tier *pro = sl_config_find_tier(cfg, "pro");
    cr_assert_not_null(free_);
    cr_assert_not_null(pro);
    cr_expect_null(sl_config_find_tier(cfg, "gold"));
    cr_expect_eq(free_->messages_per_minute, 10);
    cr_expect_eq(free_->max_streams_per_user, SL_CONFIG_UNSET);
    cr_expect_eq(free_->tokens_per_minute, SL_CONFIG_UNSET);
    cr_expect_eq(free_->budget_usd_per_day, 0.5);
    cr_expect_lt(free_->budget_usd_per_month, 0);
    cr_expect_eq(pro->max_streams_per_user, 32);
    cr_expect_eq(pro->tokens_per_minute, 0, "0 given: no limit, not unset");
    cr_expect_lt(pro->budget_usd_per_day, 0);
    cr_expect_eq(pro->budget_usd_per_month, 100);
    cr_expect_str_eq(cfg->api_keys[0].tier, "pro");
    cr_expect_null(cfg->api_keys[1].tier);
    sl_config_free(cfg);
}

Test(config, tier_errors)
{
    setenv("K1", "a", 1);
    cr_expect_str_eq(load_err("auth:\n  api_keys:\n    - {name: bot, key_env: K1, tier: gold}\n"),
                     "sluice.yaml:3: auth.api_keys[0].tier: no tier named \"gold\" under "
                     "limits.tiers");
    cr_expect_str_eq(load_err("limits:\n  tiers:\n    free: {max_streams: 3}\n"),
                     "sluice.yaml:3: unknown key limits.tiers.free.max_streams (did you mean "
                     "max_streams_per_user?)");
    cr_expect_str_eq(load_err("limits:\n  tiers:\n    free: {budget_usd_per_day: -1}\n"),
                     "sluice.yaml:3: limits.tiers.free.budget_usd_per_day: expected a number "
                     "from 0 to 1000000000, got \"-1\"");
    cr_expect_str_eq(load_err("limits:\n  tiers: [free]\n"),
                     "sluice.yaml:2: limits.tiers: expected a mapping of names to settings, got "
                     "a list");
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "limits:\n  tiers:\n    %064d: {}\n", 7);
    cr_expect_str_eq(load_err(yaml),
                     "sluice.yaml:3: limits.tiers: a tier name has at most 63 characters");
    cr_expect_str_eq(load_err("budgets: {usd_per_day: lots}\n"),
                     "sluice.yaml:1: budgets.usd_per_day: expected a number, got \"lots\"");
}

/* ---------------------------------------------------------------------------------------- */
/* No leaks, nothing half-applied                                                           */

Test(config, errors_at_every_stage_leak_nothing)
{
    /* Each fails after a different amount of the struct has been built; LeakSanitizer
     * (on in `make unit`) fails the process if any path forgets something. */
    setenv("K1", "a", 1);
    static const char *const stages[] = {
        "listen: :1\nweb_root: x\nauth: {jwt: {algorithms: [HS256, HS384]}, allowed_origins: "
        "['*'], api_keys: [{name: a, key_env: K1}]}\nlimits: {max_connections: nope}\n",
        "providers:\n  a: {kind: openai, headers: {X-A: b}, api_key: k, ca_file: /nonexistent}\n",
        "providers:\n  a: {kind: openai, headers: {X-A: b}}\nmodels:\n  m: {provider: a, "
        "fallback: [n]}\n  n: {provider: a, fallback: [m]}\n",
        "models:\n  m: {provider: demo}\nagents:\n  x: {model: m, system: s}\n  y: {model: q}\n",
        "providers:\n  demo: {kind: demo}\nmodels:\n  demo: {provider: demo, fallback: [demo]}\n",
        "auth: {jwt: {algorithms: [RS256], public_key_file: nope.pem}}\n",
        "auth: {api_keys: [{name: a, key_env: K1}, {name: b, sha256: 12}]}\n",
        "models:\n  m: {provider: demo, fallback: [demo, x]}\n",
        "limits: {max_connections: 1}\nlimits: {max_connections: 2}\n",
    };
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
        load_err(stages[i]);
    setenv("SLUICE_LOG_FORMAT", "xml", 1);
    load_err("auth: {allowed_origins: ['*']}\nproviders: {openai: {}}\n");
}

/* ---------------------------------------------------------------------------------------- */
/* --check-config summary                                                                   */

static char *
describe(const struct sl_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    sl_config_describe(cfg, f);
    fclose(f);
    return text;
}

Test(config, describe_shows_key_presence_never_keys)
{
    setenv("OPENAI_API_KEY", "sk-super-secret-value", 1);
    setenv("SLUICE_JWT_SECRET", "jwt-super-secret-value-long-enough-000", 1);
    struct sl_config *cfg =
        load_ok("redis: {url: 'redis://:redispass@cache:6379'}\n"
                "providers: {openai: {}, anthropic: {}, ollama: {}, lab: {kind: openai, "
                "api_key_env: null, tls_verify: false}}\n"
                "models: {gpt-4o: {provider: openai, fallback: [claude]}, claude: {provider: "
                "anthropic}}\n"
                "agents: {analyst: {model: gpt-4o, temperature: 0.2}}\n");
    char *text = describe(cfg);
    cr_expect_null(strstr(text, "sk-super-secret-value"), "%s", text);
    cr_expect_null(strstr(text, "jwt-super-secret"), "%s", text);
    cr_expect_null(strstr(text, "redispass"), "%s", text);
    cr_expect(strstr(text, "listen:    127.0.0.1:8080\n") != NULL, "%s", text);
    cr_expect(strstr(text, "JWT HS256 (secret set)") != NULL, "%s", text);
    cr_expect(strstr(text, "openai       openai    https://api.openai.com/v1  key: present") !=
                  NULL,
              "%s", text);
    cr_expect(strstr(text, "key: MISSING (ANTHROPIC_API_KEY is not set)") != NULL, "%s", text);
    cr_expect(strstr(text, "gpt-4o               -> openai/gpt-4o, fallback: claude") != NULL, "%s",
              text);
    cr_expect(strstr(text, "analyst              -> gpt-4o, temperature 0.2") != NULL, "%s", text);
    cr_expect(strstr(text, "  - provider anthropic has no API key (ANTHROPIC_API_KEY is not "
                           "set): its requests will fail with UPSTREAM_AUTH\n") != NULL,
              "%s", text);
    cr_expect(strstr(text, "  - provider lab has no API key (no api_key or api_key_env)") != NULL,
              "%s", text);
    cr_expect(strstr(text, "  - provider lab: tls_verify is off\n") != NULL, "%s", text);
    cr_expect_null(strstr(text, "provider ollama has no"), "ollama needs no key: %s", text);
    cr_expect_null(strstr(text, "provider openai has no"), "%s", text);
    free(text);
    sl_config_free(cfg);
}

Test(config, describe_warns_about_a_generated_secret_and_missing_web_root)
{
    struct sl_config *cfg = load_ok(NULL);
    char *text = describe(cfg);
    cr_expect(strstr(text, "no JWT secret configured") != NULL, "%s", text);
    cr_expect_null(strstr(text, cfg->jwt.secret), "%s", text);
    cr_expect(strstr(text, "web_root \"web\" is not a directory") != NULL, "%s", text);
    free(text);
    sl_config_free(cfg);

    cr_assert_eq(mkdir("web", 0700), 0);
    setenv("SLUICE_JWT_SECRET", "0123456789abcdef0123456789abcdef", 1);
    cfg = load_ok(NULL);
    text = describe(cfg);
    cr_expect(strstr(text, "warnings: none\n") != NULL, "%s", text);
    free(text);
    sl_config_free(cfg);

    setenv("SLUICE_AUTH_JWT_REQUIRE_EXP", "off", 1);
    cfg = load_ok(NULL);
    text = describe(cfg);
    cr_expect(strstr(text, "  - auth.jwt.require_exp is off: a JWT without exp never expires\n"),
              "%s", text);
    free(text);
    sl_config_free(cfg);
}

/* ---------------------------------------------------------------------------------------- */
/* docs/configuration.md carries the key table verbatim                                     */

/* `make unit` runs from the repository root. */
static char *
read_doc(void)
{
    FILE *f = fopen("docs/configuration.md", "rb");
    if (f == NULL)
        f = fopen("../docs/configuration.md", "rb");
    cr_assert_not_null(f, "docs/configuration.md not found from the working directory");
    char *doc = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&doc, &cap, '\0', f);
    fclose(f);
    cr_assert_gt(n, 0);
    return doc;
}

TestSuite(config_docs, .init = clean_env);

Test(config_docs, complete_example_loads)
{
    static const char head[] = "## Complete example\n\n```yaml\n";
    char *doc = read_doc();
    const char *b = strstr(doc, head);
    cr_assert_not_null(b);
    b += strlen(head);
    const char *e = strstr(b, "```\n");
    cr_assert_not_null(e);

    char path[] = "/tmp/sl-config-example-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, b, (size_t)(e - b)), e - b);
    close(fd);
    char err[512];
    struct sl_config *cfg = NULL;
    int rc = sl_config_load(path, &cfg, err, sizeof(err));
    unlink(path);
    cr_assert_eq(rc, 0, "the documented example fails: %s", err);
    cr_expect_eq(cfg->nproviders, 7);
    cr_expect_eq(cfg->nmodels, 9);
    cr_expect_eq(cfg->nagents, 2);
    cr_expect_str_eq(sl_config_find_provider(cfg, "azure")->headers[0].value, "search");
    sl_config_free(cfg);
    free(doc);
}

Test(config_docs, reference_tables_match_the_key_table)
{
    static const char begin[] = "<!-- BEGIN keys: generated by sl_config_print_keys() -->\n";
    static const char end[] = "<!-- END keys -->";
    char *doc = read_doc();

    char *gen = NULL;
    size_t genlen = 0;
    FILE *m = open_memstream(&gen, &genlen);
    sl_config_print_keys(m);
    fclose(m);

    const char *b = strstr(doc, begin);
    cr_assert_not_null(b, "marker %s missing", begin);
    b += strlen(begin);
    const char *e = strstr(b, end);
    cr_assert_not_null(e);
    size_t have = (size_t)(e - b);
    /* A mismatch means the table changed: paste `sl_config_print_keys` output again. */
    cr_expect_eq(have, genlen, "docs/configuration.md: generated section is stale");
    cr_expect(have == genlen && memcmp(b, gen, genlen) == 0,
              "docs/configuration.md: generated section is stale");
    cr_expect(strstr(gen, "`SLUICE_LIMITS_MAX_CONNECTIONS`") != NULL);
    cr_expect(strstr(gen, "| `heartbeat.interval` | duration 1ms–1h | `25s` |") != NULL, "%s", gen);
    free(gen);
    free(doc);
}

Test(config, socketio_keys)
{
    struct sl_config *cfg = load_ok(NULL);
    cr_expect_str_eq(cfg->socketio.path, "/socket.io/");
    cr_expect_eq(cfg->socketio.ping_interval_ms, 25000);
    cr_expect_eq(cfg->socketio.ping_timeout_ms, 20000);
    cr_expect_eq(cfg->socketio.max_payload, 1000000);
    cr_expect_eq(cfg->socketio.connect_timeout_ms, 45000);
    cr_expect(cfg->socketio.recovery);
    cr_assert_eq(cfg->socketio.nnamespaces, 4);
    cr_expect_str_eq(cfg->socketio.namespaces[3].name, "/sluice");
    cr_expect_str_eq(cfg->socketio.namespaces[3].dialects[0], "native");
    cr_expect_str_eq(cfg->socketio.namespaces[0].name, "/");
    cr_assert_eq(cfg->socketio.namespaces[0].ndialects, 2);
    cr_expect_str_eq(cfg->socketio.namespaces[0].dialects[1], "llm");
    cr_expect_str_eq(cfg->socketio.namespaces[2].name, "/ai");
    cr_expect_eq(cfg->socketio.namespaces[2].auth, SL_NSP_AUTH_REQUIRED);
    sl_config_free(cfg);

    setenv("SLUICE_SOCKETIO_PING_TIMEOUT", "200ms", 1);
    cfg = load_ok("socketio:\n"
                  "  path: /rt/\n"
                  "  ping_interval: 300ms\n"
                  "  max_payload: 1e6\n"
                  "  connect_timeout: 1s\n"
                  "  recovery: false\n"
                  "  namespaces:\n"
                  "    /sluice: { dialects: [native] }\n"
                  "    /stream: { dialects: [stream], auth: none }\n");
    unsetenv("SLUICE_SOCKETIO_PING_TIMEOUT");
    cr_expect_str_eq(cfg->socketio.path, "/rt/");
    cr_expect_eq(cfg->socketio.ping_interval_ms, 300);
    cr_expect_eq(cfg->socketio.ping_timeout_ms, 200);
    cr_expect_eq(cfg->socketio.max_payload, 1000000);
    cr_expect_eq(cfg->socketio.connect_timeout_ms, 1000);
    cr_expect_not(cfg->socketio.recovery);
    /* The file's list replaces the default one. */
    cr_assert_eq(cfg->socketio.nnamespaces, 2);
    cr_expect_str_eq(cfg->socketio.namespaces[0].name, "/sluice");
    cr_expect_str_eq(cfg->socketio.namespaces[0].dialects[0], "native");
    cr_expect_eq(cfg->socketio.namespaces[0].auth, SL_NSP_AUTH_REQUIRED);
    cr_expect_eq(cfg->socketio.namespaces[1].auth, SL_NSP_AUTH_NONE);
    sl_config_free(cfg);

    cfg = load_ok("socketio: { namespaces: null }\n");
    cr_expect_eq(cfg->socketio.nnamespaces, 0);
    sl_config_free(cfg);

    cr_expect_str_eq(load_err("socketio: { path: socket.io }\n"),
                     "sluice.yaml:1: socketio.path: expected a path starting and ending with '/', "
                     "such as /socket.io/");
    cr_expect_str_eq(load_err("socketio:\n  namespaces:\n    chat: {}\n"),
                     "sluice.yaml:3: socketio.namespaces.chat: a namespace starts with '/'");
    cr_expect_str_eq(load_err("socketio:\n  namespaces:\n    /x: { dialects: [klingon] }\n"),
                     "sluice.yaml:3: socketio.namespaces./x.dialects: expected one of native, "
                     "chat, llm, stream, ai");
    cr_expect_str_eq(load_err("socketio:\n  namespaces:\n    /x: { auth: maybe }\n"),
                     "sluice.yaml:3: socketio.namespaces./x.auth: expected one of required, none, "
                     "got \"maybe\"");
}

Test(config, ws_chat_and_stream_timeout_keys)
{
    struct sl_config *cfg = load_ok(NULL);
    cr_expect_str_eq(cfg->ws_chat.path, "/ws/chat");
    cr_expect_eq(cfg->ws_chat.memory.max_turns, 50);
    cr_expect_eq(cfg->ws_chat.memory.max_bytes, 65536);
    cr_expect_eq(cfg->ws_chat.memory.idle_ttl_ms, 30 * 60000);
    cr_expect_eq(cfg->ws_chat.memory.max_conversations, 10000);
    cr_expect_eq(cfg->limits.stream_timeout_ms, 600000);
    sl_config_free(cfg);

    setenv("SLUICE_WS_CHAT_MEMORY_IDLE_TTL", "5m", 1);
    cfg = load_ok("ws_chat:\n"
                  "  path: /chat/ws\n"
                  "  memory: { max_turns: 4, max_bytes: 2KiB, max_conversations: 64 }\n"
                  "limits: { stream_timeout: 0 }\n");
    unsetenv("SLUICE_WS_CHAT_MEMORY_IDLE_TTL");
    cr_expect_str_eq(cfg->ws_chat.path, "/chat/ws");
    cr_expect_eq(cfg->ws_chat.memory.max_turns, 4);
    cr_expect_eq(cfg->ws_chat.memory.max_bytes, 2048);
    cr_expect_eq(cfg->ws_chat.memory.idle_ttl_ms, 300000);
    cr_expect_eq(cfg->ws_chat.memory.max_conversations, 64);
    cr_expect_eq(cfg->limits.stream_timeout_ms, 0);
    sl_config_free(cfg);

    cr_expect_str_eq(load_err("ws_chat: { path: /ws }\n"),
                     "sluice.yaml:1: ws_chat.path: /ws is one of sluice's own paths");
    cr_expect_str_eq(load_err("ws_chat: { path: chat }\n"),
                     "sluice.yaml:1: ws_chat.path: expected a path starting with '/', such as "
                     "/ws/chat");
    cr_expect_str_eq(load_err("ws_chat: { path: /socket.io/chat }\n"),
                     "sluice.yaml:1: ws_chat.path: /socket.io/chat is under socketio.path "
                     "(/socket.io/)");
    cr_expect_str_eq(load_err("ws_chat: { path: /socket.io }\n"),
                     "sluice.yaml:1: ws_chat.path: /socket.io is under socketio.path "
                     "(/socket.io/)");
    cr_expect_str_eq(load_err("ws_chat:\n  memory: { max_turns: 1 }\n"),
                     "sluice.yaml:2: ws_chat.memory.max_turns: expected an integer from 2 to "
                     "10000, got \"1\"");
    cr_expect_str_eq(load_err("limits: { stream_timeout: 2d }\n"),
                     "sluice.yaml:1: limits.stream_timeout: expected a duration from 0s to 1d, "
                     "got \"2d\"");
}

Test(config, provider_default_model)
{
    struct sl_config *cfg = load_ok("providers:\n"
                                    "  a: { kind: openai, base_url: https://a.example }\n"
                                    "  b: { kind: openai, base_url: https://b.example, "
                                    "default_model: b2 }\n"
                                    "  c: { kind: openai, base_url: https://c.example }\n"
                                    "models:\n"
                                    "  a1: { provider: a }\n"
                                    "  b1: { provider: b }\n"
                                    "  a2: { provider: a }\n"
                                    "  b2: { provider: b }\n");
    /* Without one: the provider's first model in file order; none: NULL. */
    cr_expect_str_eq(sl_config_find_provider(cfg, "a")->default_model, "a1");
    cr_expect_str_eq(sl_config_find_provider(cfg, "b")->default_model, "b2");
    cr_expect_null(sl_config_find_provider(cfg, "c")->default_model);
    cr_expect_str_eq(sl_config_find_provider(cfg, "demo")->default_model, "demo");
    sl_config_free(cfg);

    cr_expect_str_eq(load_err("providers:\n"
                              "  a:\n"
                              "    kind: openai\n"
                              "    default_model: zz\n"),
                     "sluice.yaml:4: providers.a.default_model: no model named \"zz\"");
    cr_expect_str_eq(load_err("providers:\n"
                              "  a: { kind: openai, default_model: demo }\n"),
                     "sluice.yaml:2: providers.a.default_model: model \"demo\" belongs to "
                     "provider \"demo\", not \"a\"");
}

/* The seed frontends' example (examples/seeds.yaml) loads, keyless, with what they need. */
Test(config_docs, seeds_example_loads)
{
    char err[512];
    struct sl_config *cfg = NULL;
    int rc = sl_config_load("examples/seeds.yaml", &cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "examples/seeds.yaml: %s", err);
    static const char *const roles[] = {"analyst", "relational", "ethics", "synthesiser",
                                        "verification"};
    for (size_t i = 0; i < 5; i++) {
        const struct sl_config_agent *a = sl_config_find_agent(cfg, roles[i]);
        cr_assert_not_null(a, "agent %s", roles[i]);
        cr_expect(a->system != NULL && strlen(a->system) > 40, "agent %s: system prompt", roles[i]);
    }
    static const struct {
        const char *name;
        enum sl_provider_kind kind;
    } providers[] = {{"openai", SL_PROVIDER_OPENAI},
                     {"claude", SL_PROVIDER_ANTHROPIC},
                     {"gemini", SL_PROVIDER_GEMINI},
                     {"deepseek", SL_PROVIDER_OPENAI}};
    for (size_t i = 0; i < 4; i++) {
        const struct sl_config_provider *p = sl_config_find_provider(cfg, providers[i].name);
        cr_assert_not_null(p, "provider %s", providers[i].name);
        cr_expect_eq(p->kind, providers[i].kind, "provider %s", providers[i].name);
        cr_assert_not_null(p->default_model, "provider %s", providers[i].name);
        /* Keyless, every default model falls back to the demo model. */
        const struct sl_config_model *m = sl_config_find_model(cfg, p->default_model);
        cr_assert_not_null(m);
        cr_expect(m->nfallback > 0 && strcmp(m->fallback[m->nfallback - 1], "demo") == 0,
                  "model %s has no demo fallback", m->name);
    }
    cr_expect_str_eq(sl_config_find_provider(cfg, "deepseek")->base_url,
                     "https://api.deepseek.com/v1");
    /* Seeds 001 and 003 send no token. */
    for (size_t i = 0; i < cfg->socketio.nnamespaces; i++) {
        const struct sl_config_namespace *ns = &cfg->socketio.namespaces[i];
        bool open = strcmp(ns->name, "/stream") == 0 || strcmp(ns->name, "/ai") == 0;
        cr_expect_eq(ns->auth, open ? SL_NSP_AUTH_NONE : SL_NSP_AUTH_REQUIRED, "%s", ns->name);
        if (!open)
            continue;
        /* Open to anyone, so restricted to a list that lets the seeds' own requests through. */
        cr_assert_gt(ns->nmodels, 0, "%s has no allow-list", ns->name);
        bool has_default = false;
        for (size_t k = 0; k < ns->nmodels; k++)
            has_default |= strcmp(ns->models[k], cfg->default_model) == 0;
        cr_expect(has_default, "%s: a request naming no model runs on %s", ns->name,
                  cfg->default_model);
    }
    cr_expect_str_eq(cfg->ws_chat.path, "/ws/chat");
    cr_expect_eq(cfg->limits.stream_timeout_ms, 300000);
    cr_expect(sl_config_find_model(cfg, "claude-3") != NULL);  /* seed 000's model */
    cr_expect(sl_config_find_model(cfg, "codellama") != NULL); /* seed 003's */
    sl_config_free(cfg);
}
