# Build, test, demo, bench, install. Plain GNU make + pkg-config.
# Every .c in lib/ and in each program directory is picked up by wildcard, so
# adding a module needs no edit here.

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
PKGS     := fuse3 ext2fs com_err blkid libxxhash libarchive json-c libcrypto
CFLAGS   ?= -O2 -g
# What the code needs, kept apart from CFLAGS so `make CFLAGS=...` cannot drop it.
ALL_CFLAGS := -std=gnu17 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
            -D_FILE_OFFSET_BITS=64 -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
# libarchive and libcrypto: compiled against, never linked; layerctl/lazylib.c loads them on
# first use, so that every other layerctl command starts without them (~4 ms).
LINK_PKGS := $(filter-out libarchive libcrypto,$(PKGS))
LDLIBS   += $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null) -lpthread
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

.DEFAULT_GOAL := all
PROGRAMS := unionfs loopimg layerctl
LIB_SRCS := $(wildcard lib/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB_A    := $(BUILD)/libcommon.a

# layerctl packs and attaches images with loopimg's modules.
layerctl_USES := $(BUILD)/loopimg-core.a

# loopimg links only what it uses. With STATIC=1 it is linked statically: no
# shared objects to map and relocate at each start (about 0.5 ms less per
# command here, see bench/RESULTS-loopimg.md); the default stays dynamic, so
# that updates of libext2fs and libblkid reach it.
loopimg_LDLIBS := $(shell pkg-config --libs ext2fs com_err blkid libxxhash 2>/dev/null) -lpthread
loopimg_LDFLAGS := $(if $(filter 1,$(STATIC)),-static)

# Per program: all module objects except main.o go into a core archive that
# unit tests link against.
define program_rules
$(1)_SRCS := $$(wildcard $(1)/*.c)
$(1)_CORE_OBJS := $$(patsubst %.c,$(BUILD)/obj/%.o,$$(filter-out $(1)/main.c,$$($(1)_SRCS)))
$(BUILD)/$(1)-core.a: $$($(1)_CORE_OBJS)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
$(BUILD)/$(1): $(BUILD)/obj/$(1)/main.o $(BUILD)/$(1)-core.a $$($(1)_USES) $(LIB_A)
	$$(CC) $$(ALL_CFLAGS) -Wl,--as-needed $$(LDFLAGS) $$($(1)_LDFLAGS) -o $$@ $$^ $$(or $$($(1)_LDLIBS),$$(LDLIBS))
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rules,$(p))))

BUILT_PROGRAMS := $(foreach p,$(PROGRAMS),$(if $(wildcard $(p)/main.c),$(BUILD)/$(p)))
CORE_ARCHIVES  := $(foreach p,$(PROGRAMS),$(if $(wildcard $(p)/*.c),$(BUILD)/$(p)-core.a))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps check unit integration demo bench fuzz-ops install asan lint format clean
all: $(BUILT_PROGRAMS)

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(CORE_ARCHIVES) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -Wl,--start-group $(CORE_ARCHIVES) $(LIB_A) -Wl,--end-group $(LDLIBS) $(CHECK_LIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

deps:
	@sh scripts/install-deps

# The README's test command: installs what is missing, builds, runs every test.
check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@$(MAKE) --no-print-directory unit integration

unit: $(UNIT_BINS)
	@sh scripts/run-unit $(UNIT_BINS)

integration: all
	@BUILD=$(abspath $(BUILD)) bash tests/integration/run

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(abspath $(BUILD)) bash scripts/demo

bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(abspath $(BUILD)) bash bench/run

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" all $(UNIT_SRCS:tests/unit/%.c=build-asan/tests/%)
	@sh scripts/run-unit $(UNIT_SRCS:tests/unit/%.c=build-asan/tests/%)
	@BUILD=$(abspath build-asan) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 bash tests/integration/run

# The write-side differential tester (unionfs against the kernel's overlayfs) over many seeds.
fuzz-ops: all
	@python3 tests/integration/helpers/difftest.py --build $(abspath $(BUILD)) --seeds $${SEEDS:-1-500}

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(BUILT_PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard man/*.8) $(DESTDIR)$(PREFIX)/share/man/man8/

lint:
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
		--suppress=missingIncludeSystem -I. lib unionfs loopimg layerctl
	clang-tidy --quiet $(LIB_SRCS) $(foreach p,$(PROGRAMS),$($(p)_SRCS)) -- $(ALL_CFLAGS)

format:
	clang-format -i $(wildcard lib/*.[ch] unionfs/*.[ch] loopimg/*.[ch] layerctl/*.[ch] tests/unit/*.c)

clean:
	rm -rf build build-asan
