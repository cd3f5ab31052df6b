# escalon: plain GNU make with pkg-config.
#
#   make            build ./escalon
#   make run        install what is missing, build, run on etc/escalon.conf
#   make test       install what is missing, build, unit + end-to-end tests,
#                   then each fuzz target FUZZ_CI_SECONDS
#   make asan       the same tests under AddressSanitizer + UBSan
#   make fuzz       each libFuzzer target FUZZ_SECONDS (tests/fuzz/README)
#   make valgrind   unit tests under valgrind
#   make deps       apt-get what is missing (nothing when all is there)
#
# Required flags live in REQ_* so `make CFLAGS=-O0` keeps them.

PKGS      = libconfuse sqlite3 libmicrohttpd jansson libcurl libcrypto icu-i18n icu-uc \
            libetpan libxml-2.0 gnutls libstrophe
# Debian packages behind PKGS, the unit/e2e test tools and their servers.
DEB_BUILD = build-essential pkg-config libconfuse-dev libsqlite3-dev \
            libmicrohttpd-dev libjansson-dev libcurl4-gnutls-dev libssl-dev \
            libicu-dev tzdata libetpan-dev libxml2-dev libgnutls28-dev \
            libstrophe-dev
DEB_TEST  = libcmocka-dev python3 python3-pytest python3-aiosmtpd curl \
            wrk chromium dovecot-imapd dovecot-lmtpd swaks mutt \
            prosody python3-slixmpp clang libclang-rt-14-dev
DEB_ALL   = $(DEB_BUILD) $(DEB_TEST)

CC       ?= cc
CFLAGS   ?= -O2 -g
SANITIZE ?=
BUILD    ?= build
CONFIG   ?= etc/escalon.conf
BENCH_TICKETS ?= 1000000
PYTHON    = /usr/bin/python3

REQ_CFLAGS  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
              -Wno-missing-field-initializers -Igateway -Ichannels -Irules \
              -Itemplates -MMD -MP
REQ_LDLIBS  = -lm
ifneq ($(SANITIZE),)
REQ_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
REQ_LDFLAGS += -fsanitize=$(SANITIZE)
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libetpan's .pc leaks Debian's -specs=no-pie-link.specs: drop it.
PKG_LIBS   = $(filter-out -specs=%,$(shell pkg-config --libs $(PKGS) 2>/dev/null))

ALL_CFLAGS = $(REQ_CFLAGS) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDLIBS = $(PKG_LIBS) $(REQ_LDLIBS) $(LDLIBS)

SRCS    = $(wildcard gateway/*.c channels/*.c rules/*.c templates/*.c)
LIBSRCS = $(filter-out gateway/main.c,$(SRCS))
LIBOBJS = $(LIBSRCS:%.c=$(BUILD)/%.o)
UNITS   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
BIN     = $(if $(filter build,$(BUILD)),escalon,$(BUILD)/escalon)

.PHONY: all run test unit e2e asan valgrind bench fuzz deps clean check-config
.DEFAULT_GOAL := all

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libescalon.a: $(LIBOBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/gateway/main.o $(BUILD)/libescalon.a
	$(CC) $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libescalon.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) \
	    $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libescalon.a \
	    $(shell pkg-config --libs cmocka) $(ALL_LDLIBS)

# Unit tests print cmocka's own summaries; the last line totals them all.
unit: $(UNITS)
	@pass=0; fail=0; for t in $(UNITS); do \
	    if $(TEST_WRAP) $$t; then pass=$$((pass+1)); \
	    else fail=$$((fail+1)); echo "FAILED: $$t"; fi; \
	done; echo "unit: $$pass passed, $$fail failed"; test $$fail -eq 0

e2e: $(BIN)
	ESCALON_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q tests/e2e

# `make run` needs the build packages only; `make test` also installs the
# test servers (Dovecot, Prosody), which on a machine with systemd start
# system services on ports 143 and 5222 (the tests never use those).
DEPS ?= $(DEB_ALL)

deps:
	@missing=$$(for p in $(DEPS) $(EXTRA_DEBS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -o DPkg::Lock::Timeout=600 && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y \
	        -o DPkg::Lock::Timeout=600 $$missing; \
	fi

run:
	$(MAKE) deps DEPS="$(DEB_BUILD)"
	$(MAKE) all
	./escalon -c $(CONFIG) run

# CI fuzzes each parser of outside input for FUZZ_CI_SECONDS.
FUZZ_CI_SECONDS ?= 30

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_CI_SECONDS)

asan:
	$(MAKE) deps
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(MAKE) SANITIZE=address,undefined BUILD=build-asan \
	    build-asan/escalon unit e2e

valgrind: $(UNITS)
	$(MAKE) unit TEST_WRAP="valgrind -q --leak-check=full --error-exitcode=9"

$(BUILD)/bench_sched: tests/bench/bench_sched.c $(BUILD)/libescalon.a
	$(CC) $(ALL_CFLAGS) $(REQ_LDFLAGS) $(LDFLAGS) -o $@ $< \
	    $(BUILD)/libescalon.a $(ALL_LDLIBS)

# One table of every figure (value, unit, target, met?); the same as JSON
# in bench/results.json (tests/bench/run.py).
bench: $(BIN) $(BUILD)/bench_sched
	$(PYTHON) tests/bench/run.py --escalon $(abspath $(BIN)) \
	    --sched $(abspath $(BUILD)/bench_sched) --tickets $(BENCH_TICKETS)

# libFuzzer targets, one per parser of outside input (tests/fuzz/README):
# each runs FUZZ_SECONDS on its seeds (the mail corpus too, for mime) and
# a corpus of its own in build-fuzz/corpus/; a finding fails the target
# and leaves its reproducer in build-fuzz/artifacts/TARGET/.
FUZZ_SECONDS ?= 30
FUZZ_TIMEOUT ?= 10
FUZZ_CORPUS  ?= ../shared/corpus/mail
FUZZ_CC      ?= clang
FUZZ_BUILD    = build-fuzz
FUZZ_FLAGS    = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -g -O1
FUZZ_TARGETS  = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS     = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIBOBJS  = $(LIBSRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_ENV      = UBSAN_OPTIONS=print_stacktrace=1 \
                $(if $(wildcard tests/fuzz/lsan.supp),LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_FLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libescalon.a: $(FUZZ_LIBOBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libescalon.a
	$(FUZZ_CC) $(ALL_CFLAGS) $(FUZZ_FLAGS) -DFUZZ_TOP='"$(CURDIR)"' \
	    $(LDFLAGS) -o $@ $< $(FUZZ_BUILD)/libescalon.a $(ALL_LDLIBS)

# Targets run FUZZ_JOBS at a time (one per core); each prints one line.
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

fuzz: $(FUZZ_BINS)
	@start=$$(date +%s); rm -f $(FUZZ_BUILD)/*.status; \
	$(MAKE) --no-print-directory -j$(FUZZ_JOBS) \
	    $(FUZZ_TARGETS:%=fuzz-run-%); \
	fail=$$(cat $(FUZZ_BUILD)/*.status | grep -vc '^ok$$'); \
	echo "fuzz: $$fail of $(words $(FUZZ_TARGETS)) targets failed, $$(( $$(date +%s) - start ))s"; \
	test $$fail -eq 0

# One target: its past findings first (regression cases), then FUZZ_SECONDS
# of fuzzing; the verdict goes to $(FUZZ_BUILD)/TARGET.status.
fuzz-run-%: $(FUZZ_BUILD)/fuzz_%
	@t=$*; corpus=$(FUZZ_BUILD)/corpus/$$t; art=$(FUZZ_BUILD)/artifacts/$$t; \
	log=$(FUZZ_BUILD)/$$t.log; extra=; st=ok; \
	mkdir -p $$corpus $$art; \
	if [ -d tests/fuzz/crashes/$$t ] && ! $(FUZZ_ENV) \
	    $(FUZZ_BUILD)/fuzz_$$t tests/fuzz/crashes/$$t/* >$$log 2>&1; then \
	    echo "fuzz: $$t FAILED a regression case (tests/fuzz/crashes/$$t)"; \
	    echo FAILED >$(FUZZ_BUILD)/$$t.status; exit 0; fi; \
	if [ $$t = mime ] && [ -d $(FUZZ_CORPUS) ]; then \
	    extra=$(FUZZ_CORPUS); fi; \
	$(FUZZ_ENV) $(FUZZ_BUILD)/fuzz_$$t -print_final_stats=1 \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
	    -artifact_prefix=$$art/ $$corpus tests/fuzz/seeds/$$t \
	    $$extra >$$log 2>&1 || st=FAILED; \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log); \
	rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $$log); \
	echo $$st >$(FUZZ_BUILD)/$$t.status; \
	{ echo "fuzz: $$t $$st runs=$${runs:-?} exec/s=$${rate:-?} log=$$log"; \
	if [ $$st != ok ]; then grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written|fuzz_)' $$log | head -8; fi; }

clean:
	rm -rf build build-asan build-fuzz escalon

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
