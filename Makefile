# sluice build.
#
#   make            release build: build/sluice, build/sluice-bench, build/sluice-mock
#   make asan       the same with AddressSanitizer + UBSan under build/asan/
#   make unit       Criterion unit tests (sanitizer build)
#   make e2e        end-to-end tests (node:test, real clients) against build/asan/sluice
#   make test       unit + e2e: what CI and `scripts/test.sh` run
#   make bench      the benchmark table (docs/performance.md)
#   make fuzz       short libFuzzer runs of every network-facing parser (clang)
#
# Every .c under src/ is part of the gateway; src/main.c is the only one left out of
# libsluice.a so that tests and tools can link the rest.

CC      ?= cc
# V=1 shows every command.
Q       := $(if $(V),,@)
PKGS    := libuv libcurl jansson libjwt hiredis yaml-0.1 libssl libcrypto zlib
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat-security -Wwrite-strings -Wvla
CPPFLAGS += -Isrc -D_GNU_SOURCE -DSL_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -pthread -fno-strict-aliasing $(WARN)
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lwslay -lhttp_parser -lpthread -lm

# gcc's -fsanitize=undefined leaves out float-cast-overflow (a double out of an integer's
# range cast to it, such as a provider's "index":1e300); clang's includes it. Both take it.
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined,float-cast-overflow \
             -fno-sanitize-recover=undefined,float-cast-overflow

SRCS      := $(shell find src -name '*.c' | sort)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
# Helper programs: every directory bench/<name>/ holding .c files builds build/sluice-<name>
# (bench/loadgen: the load generator, bench/mock: the mock upstream).
BENCH_PROGS := $(sort $(patsubst bench/%/,%,$(dir $(wildcard bench/*/*.c))))
BENCH_BINS = $(foreach p,$(BENCH_PROGS),$(1)/sluice-$(p))
prog_objs = $(patsubst %.c,$(1)/obj/%.o,$(wildcard bench/$(2)/*.c))

.PHONY: all asan unit e2e test bench fuzz clean run format
.SECONDARY:

all: build/sluice $(call BENCH_BINS,build)

asan: build/asan/sluice $(call BENCH_BINS,build/asan)

# --- release objects ---------------------------------------------------------
build/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

build/libsluice.a: $(LIB_SRCS:%.c=build/obj/%.o)
	@rm -f $@
	$(Q)ar rcs $@ $^

build/sluice: build/obj/src/main.o build/libsluice.a
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

define prog_rules
build/sluice-$(1): $(call prog_objs,build,$(1)) build/libsluice.a
	@echo "  LD      $$@"
	$$(Q)$$(CC) $$(CFLAGS) -o $$@ $$^ $$(LDLIBS)
build/asan/sluice-$(1): $(call prog_objs,build/asan,$(1)) build/asan/libsluice.a
	@echo "  LD      $$@"
	$$(Q)$$(CC) $$(SAN_FLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(BENCH_PROGS),$(eval $(call prog_rules,$(p))))

# --- sanitizer objects -------------------------------------------------------
# A change of the flags above rebuilds the objects (the Makefile is a prerequisite).
build/asan/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	@echo "  CC/SAN  $<"
	$(Q)$(CC) $(CPPFLAGS) $(filter-out -O2,$(CFLAGS)) $(SAN_FLAGS) -MMD -MP -c $< -o $@

build/asan/libsluice.a: $(LIB_SRCS:%.c=build/asan/obj/%.o)
	@rm -f $@
	$(Q)ar rcs $@ $^

build/asan/sluice: build/asan/obj/src/main.o build/asan/libsluice.a
	@echo "  LD      $@"
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

# --- unit tests: one Criterion binary per tests/unit/test_*.c ----------------
# A test may #include the module's .c to reach its statics; linking against the
# archive keeps that module's object out of the binary.
build/asan/tests/%: build/asan/obj/tests/unit/%.o build/asan/libsluice.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	$(Q)$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS) -lcriterion

UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)

unit: $(UNIT_BINS)
	SL_FIXTURES=$(CURDIR)/../shared/upstream-fixtures scripts/run-unit.sh $(UNIT_BINS)

e2e: asan node_modules/.package-lock.json
	SLUICE_BIN=$(CURDIR)/build/asan/sluice SLUICE_MOCK=$(CURDIR)/build/asan/sluice-mock \
	  node --test --test-concurrency=2 --test-timeout=120000 tests/e2e/

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

test: unit e2e

bench:
	scripts/install-deps.sh --bench
	$(MAKE) all
	scripts/bench.sh

fuzz:
	scripts/fuzz.sh

run: build/sluice
	build/sluice $(ARGS)

format:
	clang-format -i $(SRCS) $(wildcard src/*/*.h) $(UNIT_SRCS) $(wildcard bench/*/*.[ch])

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
