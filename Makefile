# pgflip: a version-routing PostgreSQL proxy with expand/contract migrations.
#
#   make            build build/pgflip
#   make test       install missing deps, build, run every test (what .ci/run calls)
#   make run        throwaway PostgreSQL + demo database + pgflip on 127.0.0.1:6432
#   make deps       install the Debian packages the build and tests need
#   make SANITIZE=address,undefined test    the whole suite under sanitizers
#   make install PREFIX=/usr/local
#   make bench      proxy benchmark (bench/proxy.sh)
#   make format     clang-format every C file

CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=
VERSION  := 0.1.0

# Each sanitizer combination gets its own tree so objects never mix.
comma := ,
ifeq ($(SANITIZE),)
BUILD := build
else
BUILD := build/san-$(subst $(comma),-,$(SANITIZE))
endif

PKGS     := libevent libevent_openssl libpq inih jansson yaml-0.1 openssl
WARN     := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
            -Wshadow -Wno-unused-parameter
CFLAGS   ?= -O2 -g
CPPFLAGS += -I. -D_GNU_SOURCE -DPGFLIP_VERSION='"$(VERSION)"' \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) -MMD -MP
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent_openssl -levent -lpq -linih -ljansson -lyaml -lssl -lcrypto) -lpthread -lm
ifneq ($(SANITIZE),)
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=$(SANITIZE)
endif

# One static library per module folder; link order follows the arrows of
# DESIGN.md (proxy -> migrate -> conf -> protocol).
MODULES  := proxy migrate conf protocol
srcs      = $(filter-out proxy/main.c,$(wildcard $(1)/*.c))
objs      = $(patsubst %.c,$(BUILD)/obj/%.o,$(call srcs,$(1)))
LIBS     := $(foreach m,$(MODULES),$(BUILD)/lib$(m).a)

BIN      := $(BUILD)/pgflip
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
IT_SRC   := $(wildcard tests/integration/*.c)
IT_BIN   := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(IT_SRC))

.PHONY: all deps test unit run install bench format clean check-deps
all: $(BIN)

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

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS) -lcmocka

$(BUILD)/tests/it_%: $(BUILD)/obj/tests/integration/it_%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

deps:
	@sh tests/lib/deps.sh

test: deps
	$(MAKE) $(BIN) $(UNIT_BIN) $(IT_BIN)
	BUILD=$(BUILD) PGFLIP=$(BIN) sh tests/run.sh

unit: $(UNIT_BIN)
	BUILD=$(BUILD) PGFLIP=$(BIN) UNIT_ONLY=1 sh tests/run.sh

run: deps
	$(MAKE) $(BIN)
	PGFLIP=$(BIN) sh tests/lib/demo.sh

bench: deps
	$(MAKE) $(BIN)
	PGFLIP=$(BIN) sh bench/proxy.sh

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/pgflip
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/pgflip
	install -m 0644 conf/pgflip.ini $(DESTDIR)$(PREFIX)/share/pgflip/pgflip.ini.example

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
