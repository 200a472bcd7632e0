# qd — build, test, bench, install.
#   make            build/qd and build/libqdcore.a
#   make check      C core tests + Lua tests + examples (small mode); ends "N passed, N failed"
#   make asan       the same suite built with AddressSanitizer + UBSan (in build-asan/)
#   make bench      benchmarks (bench/RESULTS.md explains the figures)
#   make install PREFIX=/usr/local
BUILD   ?= build
PREFIX  ?= /usr/local
CC      ?= gcc
OPT     ?= -O3 -march=native
LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
CFLAGS  += -std=c11 $(OPT) -g -fopenmp -Wall -Wextra -D_GNU_SOURCE -Iruntime $(SANFLAGS)
# OpenBLAS: Debian's OpenMP build when installed (scripts/setup.sh installs it). qd runs
# OpenBLAS at one thread and threads BLAS work itself over fixed blocks (runtime/linalg.c),
# calling it from several OpenMP threads at once. The pthread build keeps an idle worker
# spinning in sched_yield that takes a core from qd's threads; the serial build is not safe
# for concurrent calls (seen: 1 and 2 threads gave different zgemm results now and then).
# The OpenMP build shares libgomp's threads with qd and is safe to call concurrently.
BLAS_OMP := $(firstword $(wildcard /usr/lib/*/openblas-openmp/libopenblas.so.0))
BLAS_LIB ?= $(if $(BLAS_OMP),$(BLAS_OMP) -Wl$(comma)-rpath$(comma)$(dir $(BLAS_OMP)),-lopenblas)
comma := ,
LDLIBS  += $(BLAS_LIB) -lm -fopenmp $(SANFLAGS)

CORE_SRC := $(filter-out runtime/lua_%.c,$(wildcard runtime/*.c))
BIND_SRC := $(wildcard runtime/lua_*.c)
INTERP_SRC := $(wildcard interp/*.c)
TEST_SRC := $(wildcard tests/c/*.c)

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
BIND_OBJ := $(BIND_SRC:%.c=$(BUILD)/%.o)
INTERP_OBJ := $(INTERP_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all check asan bench install clean print-ldlibs
all: $(BUILD)/qd $(BUILD)/test_core

$(BUILD)/%.o: %.c runtime/qd.h $(wildcard runtime/*.h interp/*.h tests/c/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) -DQD_STDLIB_INSTALL='"$(PREFIX)/share/qd"' -c $< -o $@

$(BUILD)/libqdcore.a: $(CORE_OBJ)
	@mkdir -p $(BUILD)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/qd: $(INTERP_OBJ) $(BIND_OBJ) $(BUILD)/libqdcore.a
	$(CC) $(CFLAGS) -o $@ $(INTERP_OBJ) $(BIND_OBJ) $(BUILD)/libqdcore.a $(LUA_LIBS) -lreadline $(LDLIBS)

$(BUILD)/test_core: $(TEST_OBJ) $(BUILD)/libqdcore.a
	$(CC) $(CFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libqdcore.a $(LDLIBS)

check: all
	@QD_BUILD=$(BUILD) bash tests/run_all.sh

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -march=native -fno-omit-frame-pointer" \
	  SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" check

bench: all
	@QD_BUILD=$(BUILD) bash bench/run.sh

install: $(BUILD)/qd
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/qd/qd/protocols
	install -m 755 $(BUILD)/qd $(DESTDIR)$(PREFIX)/bin/qd
	cp -r stdlib/qd/. $(DESTDIR)$(PREFIX)/share/qd/qd/

clean:
	rm -rf build build-asan

# test_transport.c includes transport.c a second time (the portable solver, under other names)
$(BUILD)/tests/c/test_transport.o: runtime/transport.c

# the link flags, for bench/run.sh (it links bench_core against the same BLAS)
print-ldlibs:
	@echo $(LDLIBS)
