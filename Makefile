# pgflip: a version-routing PostgreSQL proxy with expand/contract migrations.
#
#   make            build build/pgflip and build/loadgen (bench/loadgen.c)
#   make test       install missing deps, build, run every test (what .ci/run calls)
#   make run        throwaway PostgreSQL + demo database + pgflip on 127.0.0.1:6432
#   make deps       install the Debian packages the build and tests need
#   make SANITIZE=address,undefined test    the whole suite under sanitizers
#   make install PREFIX=/usr/local [DESTDIR=...]   binary, man pages, systemd unit
#   make man        build/man/man1/pgflip.1, build/man/man5/pgflip.ini.5 (pandoc, doc/*.md)
#   make bench      proxy benchmark (bench/proxy.sh)
#   make bench-tls  what client TLS costs direct, PgBouncer and pgflip (bench/tls.sh)
#   make format     clang-format every C file
#   make fuzz       each libFuzzer harness (tests/fuzz/) for FUZZ_SECONDS (60) s;
#                   FUZZ=options runs one; FUZZ_FLAGS adds libFuzzer flags
#   make VALGRIND=1 test    integration tests run pgflip under valgrind

CC       ?= cc
PREFIX   ?= /usr/local
MANDIR   ?= $(PREFIX)/share/man
# systemd looks for units in /usr/local/lib/systemd/system too
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
SANITIZE ?=
VALGRIND ?=
VERSION  := 0.1.0

# Each sanitizer combination gets its own tree so objects never mix.
comma := ,
ifeq ($(SANITIZE),)
BUILD := build
else
BUILD := build/san-$(subst $(comma),-,$(SANITIZE))
endif

PKGS     := libevent libevent_openssl libpq inih jansson yaml-0.1 openssl libsystemd
WARN     := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
            -Wshadow -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CPPFLAGS += -I. -D_GNU_SOURCE -DPGFLIP_VERSION='"$(VERSION)"' \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) -MMD -MP
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent_openssl -levent -lpq -linih -ljansson -lyaml -lssl -lcrypto -lsystemd) -lpg_query -lpthread -lm
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=$(SANITIZE)
# ASan's shadow memory and valgrind's cannot share one process.
ifneq ($(filter-out 0,$(VALGRIND)),)
$(error VALGRIND=1 needs a build without SANITIZE)
endif
endif

# One static library per module folder; link order follows the arrows of
# DESIGN.md (proxy -> migrate -> conf -> protocol).
MODULES  := proxy migrate conf protocol
srcs      = $(filter-out proxy/main.c,$(wildcard $(1)/*.c))
objs      = $(patsubst %.c,$(BUILD)/obj/%.o,$(call srcs,$(1)))
LIBS     := $(foreach m,$(MODULES),$(BUILD)/lib$(m).a)

BIN      := $(BUILD)/pgflip
# the fixed-rate load generator of bench/ and the story test: libpq only
LOADGEN  := $(BUILD)/loadgen
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
IT_SRC   := $(wildcard tests/integration/*.c)
IT_BIN   := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(IT_SRC))

.PHONY: all deps test unit run install man bench bench-tls format clean check-deps fuzz fuzz-build fuzz-bins
all: $(BIN) $(LOADGEN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

define module_lib
$(BUILD)/lib$(1).a: $(call objs,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call module_lib,$(m))))

$(BIN): $(BUILD)/obj/proxy/main.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(LOADGEN): $(BUILD)/obj/bench/loadgen.o
	$(CC) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs libpq 2>/dev/null || echo -lpq) -lm

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS) -lcmocka

$(BUILD)/tests/it_%: $(BUILD)/obj/tests/integration/it_%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# an LD_PRELOAD shim that makes malloc fail on demand (proxy_oom.sh)
FAILMALLOC := $(BUILD)/tests/libfailmalloc.so
$(FAILMALLOC): tests/lib/failmalloc.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -fPIC -shared -o $@ $<

# Manual pages: markdown in doc/, made roff by pandoc (one build per tree,
# like the binary).
MAN_PAGES := $(BUILD)/man/man1/pgflip.1 $(BUILD)/man/man5/pgflip.ini.5
man: $(MAN_PAGES)

$(BUILD)/man/man1/%.1: doc/%.1.md
	@mkdir -p $(dir $@)
	pandoc -s -t man -M footer="pgflip $(VERSION)" -o $@ $<

$(BUILD)/man/man5/%.5: doc/%.5.md
	@mkdir -p $(dir $@)
	pandoc -s -t man -M footer="pgflip $(VERSION)" -o $@ $<

deps:
	@sh tests/lib/deps.sh

test: deps
	$(MAKE) $(BIN) $(LOADGEN) $(UNIT_BIN) $(IT_BIN) $(FAILMALLOC) $(MAN_PAGES) fuzz-build
	BUILD=$(BUILD) PGFLIP=$(BIN) LOADGEN=$(LOADGEN) FUZZ_DIR=$(FUZZ_DIR) FUZZ_CC=$(FUZZ_CC) VALGRIND=$(VALGRIND) sh tests/run.sh

unit: $(UNIT_BIN)
	BUILD=$(BUILD) PGFLIP=$(BIN) UNIT_ONLY=1 sh tests/run.sh

run: deps
	$(MAKE) $(BIN)
	PGFLIP=$(BIN) sh tests/lib/demo.sh

bench: deps
	$(MAKE) $(BIN)
	PGFLIP=$(BIN) sh bench/proxy.sh

bench-tls: deps
	$(MAKE) $(BIN)
	PGFLIP=$(BIN) sh bench/tls.sh

# The unit's ExecStart names $(PREFIX)/bin/pgflip (without DESTDIR: where
# it runs from, not where it is staged).
install: $(BIN) $(LOADGEN) $(MAN_PAGES)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/pgflip $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/pgflip
	install -m 0644 conf/pgflip.ini $(DESTDIR)$(PREFIX)/share/pgflip/pgflip.ini.example
	install -m 0644 $(BUILD)/man/man1/pgflip.1 $(DESTDIR)$(MANDIR)/man1/pgflip.1
	install -m 0644 $(BUILD)/man/man5/pgflip.ini.5 $(DESTDIR)$(MANDIR)/man5/pgflip.ini.5
	sed 's|/usr/local/bin/pgflip|$(PREFIX)/bin/pgflip|' conf/pgflip.service >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/pgflip.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/pgflip.service

# ---- fuzzing: libFuzzer harnesses, tests/fuzz/fuzz_NAME.c -> build/fuzz/fuzz_NAME
# Every harness is linked with all of protocol/ and conf/, and with the proxy's
# SQL scanner once it exists, so a new harness needs no rule of its own. The
# module code is built once with -fsanitize=fuzzer-no-link (coverage, no
# main), a harness with -fsanitize=fuzzer; both under ASan and UBSan. One
# build/fuzz tree, whatever SANITIZE says: the harnesses always have both.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ         ?=
FUZZ_FLAGS   ?=
FUZZ_DIR     := build/fuzz
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRC))
FUZZ_NAMES   := $(if $(FUZZ),$(FUZZ),$(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC)))
FUZZ_LIB_SRC := $(wildcard protocol/*.c conf/*.c proxy/sqlscan.c)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_SRC))
FUZZ_CFLAGS  := -std=c11 $(WARN) -O1 -g -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=all -MMD -MP

.SECONDARY: $(FUZZ_LIB_OBJ)
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# rm first: a harness that no longer builds leaves no stale binary to run
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@) && rm -f $@
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(LDLIBS)

# Builds what it can and never fails the caller: without a clang that links
# -fsanitize=fuzzer it says so and builds nothing, and tests/fuzz/run.sh then
# reports every harness as a failure (make deps installs clang).
fuzz-build:
	@mkdir -p $(FUZZ_DIR)
	@if printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
		$(FUZZ_CC) -x c -fsanitize=fuzzer -o $(FUZZ_DIR)/.probe - >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory -k fuzz-bins || echo "fuzz-build: some harnesses did not build"; \
	else \
		echo "fuzz-build: $(FUZZ_CC) cannot link -fsanitize=fuzzer (make deps installs clang): no harness built"; \
	fi

fuzz-bins: $(FUZZ_BIN)
	@:

fuzz: fuzz-build
	@FUZZ_DIR=$(FUZZ_DIR) FUZZ_CC=$(FUZZ_CC) FUZZ_FLAGS="$(FUZZ_FLAGS)" sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_DIR) $(FUZZ_NAMES)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(wildcard $(FUZZ_DIR)/*.d $(FUZZ_DIR)/obj/*/*.d)
