# smsgw — GNU make, no autotools.
#
#   make              release build in build/release
#   make check        ASan+UBSan build in build/check, then every test
#   make demo         smsgwd on the simulated modem (config/demo.conf)
#   make bench        benchmarks (bench/RESULTS.md)
#   make fuzz         libFuzzer targets, each for FUZZ_SECONDS (needs clang)
#   make install      PREFIX=/usr/local DESTDIR=
#
# Sources are found by wildcard: a new at/foo.c joins libat, a new
# tests/unit/test_foo.c becomes a test binary, with no edit here.

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
PKGS    := libserialport sqlite3 libsodium jansson inih libacl

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lpthread -lm

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wno-format-nonliteral
BASEFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -I. $(PKG_CFLAGS) -MMD -MP

MODE ?= release
ifeq ($(MODE),check)
B        := build/check
MODEFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=undefined
MODELDFLAGS := -fsanitize=address,undefined
else
B        := build/release
MODEFLAGS := -O2 -g
MODELDFLAGS :=
endif

ALL_CFLAGS  = $(BASEFLAGS) $(MODEFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(MODELDFLAGS) $(LDFLAGS)

# --- sources --------------------------------------------------------------
MAINS        := daemon/smsgwd.c daemon/smsgwctl.c
AT_SRC       := $(wildcard at/*.c)
DRIVERS_SRC  := $(wildcard drivers/*.c)
CONFIG_SRC   := $(wildcard config/*.c)
DAEMON_SRC   := $(filter-out $(MAINS),$(wildcard daemon/*.c))
SIM_SRC      := $(wildcard drivers/sim/*.c)
PDUTOOL_SRC  := $(wildcard at/tool/*.c)
UNIT_SRC     := $(wildcard tests/unit/test_*.c)
UNIT_HELPERS := $(wildcard tests/unit/helper_*.c)
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(B)/%.o,$(1))

LIBAT      := $(B)/libat.a
LIBDRIVERS := $(B)/libdrivers.a
LIBCONFIG  := $(B)/libconfig.a
LIBDAEMON  := $(B)/libdaemon.a
LIBS       := $(LIBDAEMON) $(LIBDRIVERS) $(LIBCONFIG) $(LIBAT)
# Group so that the order of the archives does not matter (drivers log
# through daemon/log, the daemon uses drivers).
LINKLIBS   := -Wl,--start-group $(LIBS) -Wl,--end-group $(PKG_LIBS)

BINS := $(B)/smsgwd $(B)/smsgwctl $(B)/smsgw-pdu $(B)/smsgw-modemsim
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))

.SECONDARY:
.PHONY: all check unit-tests demo bench fuzz install uninstall clean deps soak
all: $(BINS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBAT):      $(call obj,$(AT_SRC))
$(LIBDRIVERS): $(call obj,$(DRIVERS_SRC))
$(LIBCONFIG):  $(call obj,$(CONFIG_SRC))
$(LIBDAEMON):  $(call obj,$(DAEMON_SRC))
$(LIBS):
	@mkdir -p $(dir $@)
	rm -f $@
	$(if $^,ar rcs $@ $^,ar rcs $@)

$(B)/smsgwd: $(call obj,daemon/smsgwd.c) $(LIBS)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LINKLIBS)
$(B)/smsgwctl: $(call obj,daemon/smsgwctl.c) $(LIBS)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LINKLIBS)
$(B)/smsgw-pdu: $(call obj,$(PDUTOOL_SRC)) $(LIBS)
	$(CC) $(ALL_LDFLAGS) -o $@ $(call obj,$(PDUTOOL_SRC)) $(LINKLIBS)
$(B)/smsgw-modemsim: $(call obj,$(SIM_SRC)) $(LIBS)
	$(CC) $(ALL_LDFLAGS) -o $@ $(call obj,$(SIM_SRC)) $(LINKLIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(call obj,$(UNIT_HELPERS)) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(call obj,$(UNIT_HELPERS)) $(LINKLIBS) -lcmocka

# --- tests ------------------------------------------------------------------
# check: a separate sanitizer build, then every test; the runner prints the
# closing summary line and exits non-zero on any failure.
check: deps
	$(MAKE) MODE=check all unit-tests
	MODE=check B=build/check tests/run.sh

unit-tests: $(UNIT_BINS)

deps:
	@scripts/deps.sh

demo: deps
	$(MAKE) all
	scripts/demo.sh

bench: deps
	$(MAKE) all
	bench/run.sh

soak: deps
	$(MAKE) all
	SMSGW_SOAK=1 MODE=release B=build/release tests/run.sh

# --- fuzzing (clang + libFuzzer) --------------------------------------------
FUZZ_SECONDS ?= 30
FB := build/fuzz
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FB)/%,$(FUZZ_SRC))
fuzz: deps
	$(MAKE) fuzz-build
	tests/fuzz/run.sh $(FUZZ_SECONDS)

.PHONY: fuzz-build
fuzz-build:
	$(MAKE) MODE=fuzz B=$(FB) CC=clang \
	  MODEFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined" \
	  MODELDFLAGS="-fsanitize=address,undefined" $(FUZZ_BINS)

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(LINKLIBS)

# --- install ----------------------------------------------------------------
BINDIR  := $(PREFIX)/bin
SBINDIR := $(PREFIX)/sbin
MANDIR  := $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/smsgw
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
UDEVDIR ?= $(PREFIX)/lib/udev/rules.d
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
MAN1 := docs/man/smsgwctl.1 docs/man/smsgw-modemsim.1 docs/man/smsgw-pdu.1
MAN5 := docs/man/smsgwd.conf.5
MAN8 := docs/man/smsgwd.8

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(B)/smsgwd $(DESTDIR)$(SBINDIR)/smsgwd
	install -m 0755 $(B)/smsgwctl $(B)/smsgw-pdu $(B)/smsgw-modemsim $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(SYSCONFDIR)/smsgw
	test -e $(DESTDIR)$(SYSCONFDIR)/smsgw/smsgwd.conf || \
	  install -m 0640 config/smsgwd.conf $(DESTDIR)$(SYSCONFDIR)/smsgw/smsgwd.conf
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
	  $(DESTDIR)$(UDEVDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  systemd/smsgwd.service.in > $(DESTDIR)$(UNITDIR)/smsgwd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/smsgwd.service
	install -m 0644 systemd/smsgw.sysusers $(DESTDIR)$(SYSUSERSDIR)/smsgw.conf
	sed -e 's|/etc/smsgw|$(SYSCONFDIR)/smsgw|g' systemd/smsgw.tmpfiles \
	  > $(DESTDIR)$(TMPFILESDIR)/smsgw.conf
	chmod 0644 $(DESTDIR)$(TMPFILESDIR)/smsgw.conf
	install -m 0644 systemd/60-smsgw.rules $(DESTDIR)$(UDEVDIR)/60-smsgw.rules
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 contrib/bash-completion/smsgwctl $(DESTDIR)$(BASHCOMPDIR)/smsgwctl
	install -m 0644 config/smsgwd.conf $(DESTDIR)$(DOCDIR)/smsgwd.conf
	@if [ -z "$(DESTDIR)" ]; then \
	  echo "next, as root: systemd-sysusers && systemd-tmpfiles --create smsgw.conf &&"; \
	  echo "  udevadm control --reload && systemctl daemon-reload"; fi

# Leaves the config and /var/lib/smsgw (the database) and the users.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/smsgwd
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,smsgwctl smsgw-pdu smsgw-modemsim)
	rm -f $(DESTDIR)$(UNITDIR)/smsgwd.service $(DESTDIR)$(SYSUSERSDIR)/smsgw.conf \
	  $(DESTDIR)$(TMPFILESDIR)/smsgw.conf $(DESTDIR)$(UDEVDIR)/60-smsgw.rules \
	  $(DESTDIR)$(BASHCOMPDIR)/smsgwctl $(DESTDIR)$(DOCDIR)/smsgwd.conf
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
