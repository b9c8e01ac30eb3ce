# wkfs: one non-recursive Makefile.
#
# Each directory gets only its own library flags, so a wrong include (a
# fuse header in lib/, libwebsockets in fs/) fails to build:
#   lib/    sqlite3, libxxhash, inih          -> build/libwkfs.a
#   fs/     fuse3                              -> linked into build/wkfs
#   tools/  (the command; links fs/ and lib/)  -> build/wkfs
#   syncd/  libwebsockets, libcrypto           -> build/wkfs-relay,
#           (+ sqlite3 for relay_db.c only)       build/wkfs-relay-test,
#                                                 build/wkfs-syncd
#
# Targets: all check check-long check-deb (SAN=1 for ASan+UBSan, WERROR=1 as in CI)
#          fuzz (FUZZ_TIME=seconds per harness) install (PREFIX, DESTDIR, SBINDIR...) deb lint-man clean format demo
#          bench bench-sync bench-converge bench-scale deps

PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?= 0
WERROR  ?= 0
B       := build

CC      ?= cc
PKG     ?= pkg-config

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wno-unused-parameter -D_GNU_SOURCE \
	   -D_FILE_OFFSET_BITS=64 -MMD -MP -Ilib
ifeq ($(WERROR),1)
CFLAGS  += -Werror
endif
ifeq ($(SAN),1)
B       := build-san
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
LDLIBS  += -lpthread

pkg_cflags = $(shell $(PKG) --cflags $(1) 2>/dev/null)
pkg_libs   = $(shell $(PKG) --libs $(1) 2>/dev/null)

LIB_PKGS   := sqlite3 libxxhash inih
FS_PKGS    := fuse3
SYNCD_PKGS := libwebsockets libcrypto

LIB_SRC   := $(sort $(wildcard lib/*.c))
FS_SRC    := $(sort $(wildcard fs/*.c))
TOOLS_SRC := $(sort $(wildcard tools/*.c))
RELAY_SRC := syncd/relay_main.c syncd/relay_server.c syncd/relay_session.c \
	     syncd/relay_db.c syncd/relay_chunks.c syncd/relay_git.c \
	     syncd/relay_gitrebuild.c syncd/relay_limits.c syncd/relay_admit.c \
	     syncd/relay_http.c syncd/relay_stats.c syncd/syncd_gitseg.c \
	     syncd/relay_config.c
RTEST_SRC := syncd/relay_test.c syncd/ws_client.c
SYNCD_SRC := syncd/syncd_main.c syncd/syncd_session.c syncd/syncd_content.c \
	     syncd/syncd_ctl.c syncd/syncd_wake.c syncd/syncd_batch.c \
	     syncd/syncd_chunks.c syncd/syncd_fetch.c syncd/syncd_local.c \
	     syncd/syncd_git.c syncd/syncd_gitseg.c \
	     syncd/syncd_gitpull.c syncd/syncd_gitmirror.c syncd/syncd_refetch.c \
	     syncd/ws_client.c
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_HELP := $(filter-out $(UNIT_SRC),$(sort $(wildcard tests/unit/*.c)))

LIB_OBJ   := $(LIB_SRC:%.c=$(B)/%.o)
FS_OBJ    := $(FS_SRC:%.c=$(B)/%.o)
TOOLS_OBJ := $(TOOLS_SRC:%.c=$(B)/%.o)
RELAY_OBJ := $(RELAY_SRC:%.c=$(B)/%.o)
RTEST_OBJ := $(RTEST_SRC:%.c=$(B)/%.o)
SYNCD_OBJ := $(SYNCD_SRC:%.c=$(B)/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
UNIT_HOBJ := $(UNIT_HELP:%.c=$(B)/%.o)

LIBWKFS   := $(B)/libwkfs.a
WKFS      := $(B)/wkfs
RELAY     := $(B)/wkfs-relay
RTEST     := $(B)/wkfs-relay-test
SYNCD     := $(B)/wkfs-syncd
BINS      := $(WKFS) $(RELAY) $(SYNCD)
TEST_BINS := $(RTEST)

LIB_LIBS  := $(call pkg_libs,$(LIB_PKGS)) -lm

.PHONY: all check check-run check-long check-deb install clean format demo bench deps deb \
	fuzz fuzz-bins \
	bench-chunk bench-merge bench-sync bench-converge bench-scale lint-man
all: $(BINS) $(TEST_BINS)

$(B)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(call pkg_cflags,$(LIB_PKGS)) -c -o $@ $<

$(B)/fs/%.o: fs/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ifs $(call pkg_cflags,$(FS_PKGS)) -c -o $@ $<

$(B)/tools/%.o: tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ifs -c -o $@ $<

# relay_db.c is the relay's one SQLite user (see syncd/relay_db.h).
$(B)/syncd/relay_db.o: SYNCD_EXTRA := $(call pkg_cflags,sqlite3)
# relay_config.c reads wkfs-relay's config file with inih.
$(B)/syncd/relay_config.o: SYNCD_EXTRA := $(call pkg_cflags,inih)

$(B)/syncd/%.o: syncd/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isyncd $(call pkg_cflags,$(SYNCD_PKGS)) $(SYNCD_EXTRA) \
		-c -o $@ $<

$(B)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(call pkg_cflags,cmocka $(LIB_PKGS)) -c -o $@ $<

$(LIBWKFS): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(WKFS): $(TOOLS_OBJ) $(FS_OBJ) $(LIBWKFS)
	$(CC) $(LDFLAGS) -o $@ $(TOOLS_OBJ) $(FS_OBJ) $(LIBWKFS) \
		$(call pkg_libs,$(FS_PKGS)) $(LIB_LIBS) $(LDLIBS)

$(RELAY): $(RELAY_OBJ) $(LIBWKFS)
	$(CC) $(LDFLAGS) -o $@ $(RELAY_OBJ) $(LIBWKFS) \
		$(call pkg_libs,$(SYNCD_PKGS)) $(LIB_LIBS) $(LDLIBS)

$(RTEST): $(RTEST_OBJ) $(LIBWKFS)
	$(CC) $(LDFLAGS) -o $@ $(RTEST_OBJ) $(LIBWKFS) \
		$(call pkg_libs,$(SYNCD_PKGS)) $(LIB_LIBS) $(LDLIBS)

$(SYNCD): $(SYNCD_OBJ) $(LIBWKFS)
	$(CC) $(LDFLAGS) -o $@ $(SYNCD_OBJ) $(LIBWKFS) \
		$(call pkg_libs,$(SYNCD_PKGS)) $(LIB_LIBS) $(LDLIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(UNIT_HOBJ) $(LIBWKFS)
	$(CC) $(LDFLAGS) -o $@ $< $(UNIT_HOBJ) $(LIBWKFS) \
		$(call pkg_libs,cmocka) $(LIB_LIBS) $(LDLIBS)

# test_gitseg checks syncd's segment codec, which is pure code (no lws).
$(B)/tests/unit/test_gitseg.o: CFLAGS += -Isyncd
$(B)/tests/test_gitseg: $(B)/tests/unit/test_gitseg.o \
		$(B)/syncd/syncd_gitseg.o $(UNIT_HOBJ) $(LIBWKFS)
	$(CC) $(LDFLAGS) -o $@ $< $(B)/syncd/syncd_gitseg.o $(UNIT_HOBJ) \
		$(LIBWKFS) $(call pkg_libs,cmocka) $(LIB_LIBS) $(LDLIBS)

# ---- fuzzing: libFuzzer harnesses tests/fuzz/fuzz_*.c -> build-fuzz/ ----
# Built by clang with ASan and UBSan against lib/ and syncd's segment
# codec (an archive: a harness links only the objects it reaches).
# `make fuzz` runs each for FUZZ_TIME seconds on its seed corpus
# (tests/fuzz/corpus/NAME); check-run runs each briefly (tests/run) when
# clang can build them.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FB         := build-fuzz
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=$(FB)/%)
FUZZ_LIB   := $(LIB_SRC) syncd/syncd_gitseg.c syncd/relay_config.c \
	      syncd/relay_limits.c
FUZZ_OBJ   := $(FUZZ_LIB:%.c=$(FB)/%.o)
# Asked only by the targets that run the harnesses when clang is there.
HAVE_FUZZ  := $(if $(filter check-run check-long,$(MAKECMDGOALS)),$(shell \
	echo 'int LLVMFuzzerTestOneInput(const char *p, long n) { return 0; }' \
	| $(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null && \
	echo yes))

$(FB)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
		-MMD -MP -Ilib -Isyncd -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
		$(call pkg_cflags,$(LIB_PKGS)) -c -o $@ $<

$(FB)/libwkfs.a: $(FUZZ_OBJ)
	$(AR) rcs $@ $^

$(FB)/fuzz_%: $(FB)/tests/fuzz/fuzz_%.o $(FB)/libwkfs.a
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LIB_LIBS) \
		$(LDLIBS)

fuzz-bins: $(FUZZ_BIN)

# The seed corpus's maker (tests/fuzz/mkseeds.c says when to run it).
$(FB)/mkseeds: tests/fuzz/mkseeds.c $(FB)/libwkfs.a
	$(FUZZ_CC) -g -std=gnu11 -D_GNU_SOURCE -Ilib -Isyncd $(FUZZ_SAN) \
		-o $@ $^ $(LIB_LIBS) $(LDLIBS)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-bins
	@FB=$(FB) tests/fuzz/run $(FUZZ_TIME)

# check installs what is missing first, then re-reads this Makefile so that
# pkg-config sees the freshly installed libraries.
check: deps
	@$(MAKE) --no-print-directory check-run

check-run: $(BINS) $(TEST_BINS) $(UNIT_BIN) $(if $(HAVE_FUZZ),$(FUZZ_BIN))
	@B=$(B) FB=$(if $(HAVE_FUZZ),$(FB)) tests/run

check-long: deps
	@$(MAKE) --no-print-directory $(BINS) $(TEST_BINS) $(UNIT_BIN) \
		$(if $(HAVE_FUZZ),$(FUZZ_BIN))
	@B=$(B) FB=$(if $(HAVE_FUZZ),$(FB)) WKFS_LONG=1 tests/run

# The Debian package's test alone (95-deb.bats: builds, installs, mounts
# through fstab, purges; minutes): CI runs it beside make check.
check-deb: deps
	@$(MAKE) --no-print-directory $(BINS)
	@B=$(B) WKFS_LONG=1 WKFS_TESTS=95-deb tests/run

deps:
	@tools/install-deps

demo: deps
	@$(MAKE) --no-print-directory $(BINS)
	@B=$(B) tools/demo

bench: deps
	@tools/install-deps --bench
	@$(MAKE) --no-print-directory $(BINS)
	@B=$(B) tests/bench/fs.sh

# wkfs's replication beside Syncthing (tests/bench/sync.sh; BENCH_QUICK=1).
bench-sync: deps
	@tools/install-deps --bench
	@$(MAKE) --no-print-directory $(BINS)
	@B=$(B) tests/bench/sync.sh

# Time to converge per workload, relay and git (tests/bench/converge.sh).
bench-converge: deps
	@$(MAKE) --no-print-directory $(BINS)
	@B=$(B) tests/bench/converge.sh

# A folder of 100,000 files (SCALE=1M: 1,000,000) against native
# (tests/bench/scale.sh).
bench-scale: deps
	@tools/install-deps --bench
	@$(MAKE) --no-print-directory $(BINS)
	@B=$(B) tests/bench/scale.sh

# Benchmarks of pure library code: tests/bench/NAME.c -> $(B)/bench-NAME.
$(B)/bench-%: tests/bench/%.c $(LIBWKFS)
	$(CC) $(CFLAGS) $(call pkg_cflags,$(LIB_PKGS)) $(LDFLAGS) -o $@ $< \
		$(LIBWKFS) $(LIB_LIBS) $(LDLIBS)

bench-chunk bench-merge: bench-%: $(B)/bench-%
	@$(B)/bench-$*

# Where install puts things.  mount(8) looks for mount.TYPE helpers in /sbin
# only, and runs them (and mount.fuse3 runs wkfs) with PATH reset to the
# system directories, so fstab mounts need PREFIX /usr/local or /usr.  The
# systemd units are written from contrib/systemd/*.in with BINDIR filled in.
SBINDIR            ?= /sbin
BINDIR             ?= $(PREFIX)/bin
MANDIR             ?= $(PREFIX)/share/man
SYSTEMDUNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSTEMDUSERUNITDIR ?= $(PREFIX)/lib/systemd/user
SYSUSERSDIR        ?= $(PREFIX)/lib/sysusers.d
BASHCOMPDIR        ?= $(PREFIX)/share/bash-completion/completions

MAN_PAGES := $(sort $(wildcard docs/man/*.[158]))
UNIT_EXAMPLES := contrib/systemd/home-u-Notes.mount \
		 contrib/systemd/home-u-Notes.automount
fill_unit = sed 's|@BINDIR@|$(BINDIR)|g' contrib/systemd/$(1).in \
	>$(DESTDIR)$(2)/$(1) && chmod 644 $(DESTDIR)$(2)/$(1)

install: $(BINS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(SYSTEMDUSERUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(PREFIX)/share/doc/wkfs
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)/
	ln -sf $(BINDIR)/wkfs $(DESTDIR)$(SBINDIR)/mount.wkfs
	for m in $(MAN_PAGES); do \
		install -m 644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/ || exit 1; \
	done
	$(call fill_unit,wkfs@.service,$(SYSTEMDUNITDIR))
	$(call fill_unit,wkfs@.service,$(SYSTEMDUSERUNITDIR))
	$(call fill_unit,wkfs-relay.service,$(SYSTEMDUNITDIR))
	install -m 644 contrib/systemd/wkfs-relay.sysusers \
		$(DESTDIR)$(SYSUSERSDIR)/wkfs-relay.conf
	install -m 644 $(UNIT_EXAMPLES) $(DESTDIR)$(PREFIX)/share/doc/wkfs/
	install -m 644 contrib/bash-completion/wkfs $(DESTDIR)$(BASHCOMPDIR)/wkfs

# The Debian package: contrib/debian/ is the debian/ directory of a copy of
# the source tree in $(B)/deb/wkfs-VERSION, built with dpkg-buildpackage;
# the .deb lands in $(B)/deb/ and lintian must find no error in it.
DEB_VERSION := $(shell sed -n 's/^\#define WKFS_VERSION "\(.*\)"/\1/p' lib/version.h)
DEB_TREE    := $(B)/deb/wkfs-$(DEB_VERSION)
DEB_SOURCES := Makefile README.md lib fs tools syncd docs contrib

deb:
	@tools/install-deps --deb
	@head -n 1 contrib/debian/changelog | grep -qF '($(DEB_VERSION))' || \
		{ echo "contrib/debian/changelog does not name version" \
		  "$(DEB_VERSION) (lib/version.h): add an entry" >&2; exit 1; }
	rm -rf $(B)/deb && mkdir -p $(DEB_TREE)
	cp -a $(DEB_SOURCES) $(DEB_TREE)/
	cp -a contrib/debian $(DEB_TREE)/debian
	cd $(DEB_TREE) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		dpkg-buildpackage -us -uc -b
	lintian --fail-on error $(B)/deb/wkfs_$(DEB_VERSION)_*.deb

# The man pages must lint clean (tests/integration/90-man.bats runs this).
lint-man:
	@out=$$(mandoc -T lint -W warning $(MAN_PAGES) 2>&1); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi

format:
	clang-format -i $(wildcard lib/*.[ch] fs/*.[ch] tools/*.[ch] \
		syncd/*.[ch] tests/unit/*.[ch])

clean:
	rm -rf build build-san $(FB)

# (not the package's tree in $(B)/deb, whose sysusers.d is a directory)
-include $(shell find $(B) $(FB) -path $(B)/deb -prune -o -name '*.d' -type f -print 2>/dev/null)
