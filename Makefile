# escalon: plain GNU make with pkg-config.
#
#   make            build ./escalon
#   make run        install what is missing, build, run on etc/escalon.conf
#   make test       install what is missing, build, unit + end-to-end tests
#   make asan       the same tests under AddressSanitizer + UBSan
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
            prosody python3-slixmpp
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

deps:
	@missing=$$(for p in $(DEB_ALL) $(EXTRA_DEBS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -o DPkg::Lock::Timeout=600 && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y \
	        -o DPkg::Lock::Timeout=600 $$missing; \
	fi

run: deps
	$(MAKE) all
	./escalon -c $(CONFIG) run

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e

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

bench: $(BIN) $(BUILD)/bench_sched
	$(PYTHON) tests/bench/webhook_bench.py $(abspath $(BIN))
	$(PYTHON) tests/bench/imap_bench.py $(abspath $(BIN))
	$(PYTHON) tests/bench/chat_bench.py $(abspath $(BIN))
	$(BUILD)/bench_sched $(BENCH_TICKETS)

clean:
	rm -rf build build-asan escalon

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
